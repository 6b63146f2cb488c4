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


def absolute_imports(path: Path) -> set[str]:
    """Return the modules a file imports by absolute name (``import a.b``, ``from a.b import c``: ``a.b``).

    Module or function level; relative imports stay inside their package and are left out.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _top_level_imports(path: Path) -> set[str]:
    """Return the top-level packages a file imports (absolute imports, module or function level)."""
    return {module.split(".")[0] for module in absolute_imports(path)}


def imported_apps(app: str) -> dict[str, set[str]]:
    """Other apps of ``ALLOWED_IMPORTS`` that ``app``'s modules import (module or function level) → the files."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / app).rglob("*.py")):
        for other in _top_level_imports(path) & set(ALLOWED_IMPORTS) - {app}:
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
    import faults.errors  # noqa: F401
    import goods.errors  # noqa: F401
    import inventory.errors  # noqa: F401
    import mall.errors  # noqa: F401
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


# The lab's doors into manage.py: the commands that place test orders (place_test_orders, and the diagnosis
# scenarios of `manage.py scenario`) drive the load generator, and nothing else of the lab.
PERF_DOOR = {
    "mall/management/commands/place_test_orders.py": "perf.loadgen",
    "faults/scenarios.py": "perf.loadgen",
}


def test_no_product_module_imports_the_perf_package():
    importers: dict[str, set[str]] = {}
    for app in ("goods", "inventory", "carts", "orders", "mall", "traces", "faults"):
        for path in sorted((REPO / app).rglob("*.py")):
            relative = str(path.relative_to(REPO))
            door = PERF_DOOR.get(relative)
            for module in absolute_imports(path):
                if module.split(".")[0] == "perf" and not (door and (module + ".").startswith(door + ".")):
                    importers.setdefault(relative, set()).add(module)
    assert importers == {}


# The project's own packages, the product (the performance lab, perf/, is not part of it).
PROJECT_PACKAGES = ("goods", "inventory", "carts", "orders", "mall", "traces", "faults")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports() -> dict[str, set[str]]:
    """Map each module of ``PROJECT_PACKAGES`` to the project modules it imports (module or function level).

    ``from package import name`` counts as an import of ``package.name`` when that is a module, else of
    ``package``; the parents a dotted import runs implicitly are not counted.
    """
    paths = [path for package in PROJECT_PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    modules = {_module_name(path): path for path in paths if "migrations" not in path.parts}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:
                        found.add(f"{base}.{alias.name}")
                    elif base in modules:
                        found.add(base)
        graph[module] = found - {module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the groups of modules that import each other, directly or round a cycle (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_two_modules_of_the_project_import_each_other():
    graph = module_imports()
    assert "orders.checkout" in graph and "orders.expiry" in graph["orders.checkout"], "the graph is built"
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_round_three_modules():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


DOMAIN_APPS = ("orders", "inventory", "carts", "goods")


def test_no_business_function_takes_a_span():
    """Spans come from decorators and context managers at the boundaries, so only a tracing module may take one."""
    takers = []
    for app in DOMAIN_APPS:
        for path in sorted((REPO / app).rglob("*.py")):
            if path.stem == "tracing":
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                    if any(argument.arg == "span" or argument.arg.endswith("_span") for argument in arguments):
                        takers.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert takers == []


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
