"""With DEBUG on (the default of `make run`), a checkout's trace is the span tree the README shows.

Django's SQLite backend renders parameters for its debug query log with ``SELECT QUOTE(?)``; those
statements must not become spans. The expected tree is read from the README itself, so the
README and the shop cannot drift apart.
"""

import re

import pytest
from django.db import connection

from tests.factories import fill_cart
from tests.support import REPO

TREE_BRANCH = re.compile(r"[├└]─ (\S+)")
SQL_COLUMN = 30  # in the README's tree, a branch right of this column is a step's SQL statement


def readme_checkout_tree(*, vendor: str) -> tuple:
    """``(name, children)`` of the README's "A checkout trace" block; SQL statements by their verb."""
    text = (REPO / "README.md").read_text()
    block = text.split("A checkout trace (service `mall`):", 1)[1].split("```", 2)[1]
    lines = block.strip("\n").split("\n\n", 1)[0].splitlines()  # up to the close trace
    root = (re.split(r"\s{2,}", lines[0])[0], [])
    by_depth = {0: root}
    for line in lines[1:]:
        if "SQLite only" in line and vendor != "sqlite":
            continue
        for match in TREE_BRANCH.finditer(line):
            node = (match.group(1), [])
            if match.start() >= SQL_COLUMN:  # a statement of the last step
                by_depth[max(by_depth)][1].append(node)
                continue
            depth = match.start() // 3 + 1
            by_depth[depth - 1][1].append(node)
            by_depth = {d: n for d, n in by_depth.items() if d < depth} | {depth: node}
    return root


def recorded_tree(finished_spans) -> tuple:
    children = {}
    for span in sorted(finished_spans, key=lambda s: s.start_time):
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)

    def node(span):
        return (span.name, [node(child) for child in children.get(span.context.span_id, [])])

    (root,) = children[None]
    return node(root)


def test_the_readme_tree_is_read_as_written():
    name, children = readme_checkout_tree(vendor="sqlite")
    assert name == "POST api/orders/"
    assert [child[0] for child in children] == ["SELECT", "create_order"]
    steps = dict(children[1][1])
    step_names = ["select_shopcart", "query_goods", "save_order", "save_order_goods", "delete_shopcart"]
    assert list(steps) == ["BEGIN", *step_names, "query_inv", "schedule_timeout"]
    assert [verb for verb, _ in steps["query_inv"]] == ["INSERT", "SELECT", "UPDATE"]
    assert "BEGIN" not in dict(readme_checkout_tree(vendor="mysql")[1][1][1])


@pytest.mark.django_db(transaction=True)
def test_a_debug_checkout_trace_is_the_readme_tree_without_quote_spans(
    settings, client_for, user, goods_in_stock, address, spans
):
    settings.DEBUG = True  # Django's debug cursor: every statement is rendered for connection.queries
    fill_cart(user, (goods_in_stock(), 2), (goods_in_stock(), 1), (goods_in_stock(), 3))
    api = client_for(user)
    spans.clear()

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 201, response.content
    statements = [span.attributes.get("db.statement", "") for span in spans.get_finished_spans()]
    assert statements and not [s for s in statements if "QUOTE(" in s.upper()]
    assert recorded_tree(spans.get_finished_spans()) == readme_checkout_tree(vendor=connection.vendor)
    assert connection.queries  # the debug log still renders the statements (with their values)
