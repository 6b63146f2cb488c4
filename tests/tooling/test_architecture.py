"""The shape of the code: apps depend on each other one way, domain errors have one HTTP status each,
and the steps that belong to a caller's transaction refuse to run outside one."""

import ast
from pathlib import Path

import pytest
from django.db.transaction import TransactionManagementError

from mall.api.exceptions import STATUS_BY_ERROR, status_for
from mall.errors import DomainError

REPO = Path(__file__).resolve().parents[2]

# Who may import whom: orders → carts, inventory, goods; carts → goods; inventory → goods; goods → none.
ALLOWED_IMPORTS = {
    "goods": set(),
    "inventory": {"goods"},
    "carts": {"goods"},
    "orders": {"goods", "inventory", "carts"},
}


def imported_apps(app: str) -> dict[str, set[str]]:
    """Other apps of ``ALLOWED_IMPORTS`` that ``app``'s modules import (module or function level) → the files."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / app).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                other = module.split(".")[0]
                if other in ALLOWED_IMPORTS and other != app:
                    found.setdefault(other, set()).add(str(path.relative_to(REPO)))
    return found


@pytest.mark.parametrize("app", sorted(ALLOWED_IMPORTS))
def test_apps_import_each_other_one_way_only(app):
    unexpected = {other: files for other, files in imported_apps(app).items() if other not in ALLOWED_IMPORTS[app]}
    assert unexpected == {}


def test_the_allowed_imports_have_no_cycle():
    def reaches(start: str, target: str) -> bool:
        return any(other == target or reaches(other, target) for other in ALLOWED_IMPORTS[start])

    assert [app for app in ALLOWED_IMPORTS if reaches(app, app)] == []


def _domain_errors() -> list[type[DomainError]]:
    import carts.errors  # noqa: F401 - importing them registers the subclasses
    import goods.errors  # noqa: F401
    import inventory.errors  # noqa: F401
    import mall.auth  # noqa: F401
    import orders.errors  # noqa: F401

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    return sorted(subclasses(DomainError), key=lambda cls: cls.__qualname__)


def test_every_domain_error_code_has_its_http_status_in_the_api_layer():
    errors = _domain_errors()
    assert errors, "no domain errors found"
    assert [error.__qualname__ for error in errors if error not in STATUS_BY_ERROR] == []
    codes = [error.code for error in errors]
    assert sorted({code for code in codes if codes.count(code) > 1}) == [], "two error classes share a code"
    assert [error.__qualname__ for error in errors if hasattr(error, "status_code")] == []


def test_faults_are_answered_5xx_and_refusals_4xx():
    for error in _domain_errors():
        assert (STATUS_BY_ERROR[error] >= 500) == error.fault, error.__qualname__


def test_a_domain_error_subclass_takes_its_listed_base_class_status():
    from inventory.errors import InsufficientStock

    class NarrowerShortage(InsufficientStock):
        pass

    assert status_for(NarrowerShortage()) == STATUS_BY_ERROR[InsufficientStock]


@pytest.mark.django_db(transaction=True)
def test_steps_of_a_callers_transaction_refuse_to_run_on_their_own():
    from carts.services import delete_ordered_items
    from inventory.locks import lock_goods_rows, lock_stock_rows
    from inventory.services import deduct_stock, return_stock, return_stock_of_orders

    steps = [
        lambda: lock_goods_rows([1]),
        lambda: lock_stock_rows([1]),
        lambda: deduct_stock(order_no="ARCH-1", quantities={1: 1}),
        lambda: return_stock(order_no="ARCH-1", quantities={1: 1}),
        lambda: return_stock_of_orders(quantities_by_order={"ARCH-1": {1: 1}}),
        lambda: delete_ordered_items(item_ids=[1]),
    ]
    for step in steps:
        with pytest.raises(TransactionManagementError, match="caller's transaction"):
            step()
