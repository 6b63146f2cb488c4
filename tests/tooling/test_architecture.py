"""The shape of the code: apps depend on each other one way, domain errors have one HTTP status each,
and the steps that belong to a caller's transaction refuse to run outside one."""

import ast
from pathlib import Path

import pytest
from django.db.transaction import TransactionManagementError

from mall.api.exceptions import STATUS_BY_CODE
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
    assert [error.__qualname__ for error in errors if error.code not in STATUS_BY_CODE] == []
    assert [error.__qualname__ for error in errors if hasattr(error, "status_code")] == []


def test_faults_are_answered_5xx_and_refusals_4xx():
    for error in _domain_errors():
        assert (STATUS_BY_CODE[error.code] >= 500) == error.fault, error.__qualname__


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


# The lab's one door into manage.py: the command that places test orders drives the load generator.
PERF_DOOR = {"mall/management/commands/place_test_orders.py": "perf.loadgen"}


def test_no_product_module_imports_the_perf_package():
    importers: dict[str, set[str]] = {}
    for app in ("goods", "inventory", "carts", "orders", "mall"):
        for path in sorted((REPO / app).rglob("*.py")):
            relative = str(path.relative_to(REPO))
            for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    door = PERF_DOOR.get(relative)
                    if module.split(".")[0] == "perf" and not (door and (module + ".").startswith(door + ".")):
                        importers.setdefault(relative, set()).add(module)
    assert importers == {}


def _top_level_imports(path: Path) -> set[str]:
    """Return the top-level packages a file imports (absolute imports, module or function level)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


# Tests of the lab itself drive it; every other test reaches processes and receivers through harness/.
LAB_TESTS = ("tests/tooling/test_bench_*.py", "tests/e2e/test_place_test_orders*.py")


def test_tests_do_not_import_the_perf_package():
    importers = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "tests").rglob("*.py"))
        if not any(path.match(str(REPO / pattern)) for pattern in LAB_TESTS) and "perf" in _top_level_imports(path)
    ]
    assert importers == []


def test_the_shared_harness_imports_neither_the_tests_nor_the_lab_nor_the_product():
    project = {"tests", "perf", "goods", "inventory", "carts", "orders", "mall"}
    importers = {
        str(path.relative_to(REPO)): sorted(_top_level_imports(path) & project)
        for path in sorted((REPO / "harness").rglob("*.py"))
    }
    assert {path: modules for path, modules in importers.items() if modules} == {}
