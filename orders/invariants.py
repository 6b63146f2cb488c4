"""The shop's money-and-stock invariants, checked from the database (``manage.py check_stock``).

- stock: for every goods, Σ adjust + Σ return − Σ sell of the ledger == its stock quantity;
- sells: every order's lines match its sell moves (same goods, same quantity), one move per line;
- returns: a closed/cancelled order has exactly one return move per line, matching it;
  a pending/paid order has none;
- no sell/return move belongs to an order that does not exist;
- every order's pay_price == Σ goods_price × nums of its lines.
"""

from collections import defaultdict
from contextlib import contextmanager
from decimal import Decimal

from django.db import connection, transaction

from inventory.invariants import ledger_problems, order_moves
from orders.models import Order, OrderLine

ENDED = {Order.Status.CLOSED, Order.Status.CANCELLED}


def check_invariants() -> list[str]:
    """List all problems found (stock ledger and orders); an empty list means the shop is consistent.

    The checks read one consistent snapshot, so they can run against a live shop.
    """
    with _consistent_snapshot():
        return ledger_problems() + order_problems()


def order_problems() -> list[str]:
    """Check the orders against their lines and the ledger's sell/return moves."""
    moves = order_moves()
    lines: dict[int, list[tuple[int, int]]] = defaultdict(list)
    line_total: dict[int, Decimal] = defaultdict(Decimal)
    for order_id, goods_id, quantity, price in OrderLine.objects.order_by("id").values_list(
        "order_id", "goods_id", "nums", "goods_price"
    ):
        lines[order_id].append((goods_id, quantity))
        line_total[order_id] += price * quantity

    problems = []
    orders = Order.objects.order_by("id").values_list("id", "order_no", "status", "pay_price")
    for order_id, order_no, status, pay_price in orders.iterator(chunk_size=5000):
        name = f"order {order_no} ({status})"
        ordered = sorted(lines.get(order_id, []))
        order_moves_by_kind = moves.pop(order_no, {})
        sold = sorted(order_moves_by_kind.get("sell", []))
        returned = sorted(order_moves_by_kind.get("return", []))
        if not ordered:
            problems.append(f"{name}: no lines")
        if sold != ordered:
            problems.append(f"{name}: lines {_quantities(ordered)} but sell moves {_quantities(sold)}")
        if status in ENDED and returned != ordered:
            problems.append(f"{name}: lines {_quantities(ordered)} but return moves {_quantities(returned)}")
        if status not in ENDED and returned:
            problems.append(f"{name}: return moves {_quantities(returned)} although the order is not ended")
        if pay_price != line_total.get(order_id, Decimal("0")):
            problems.append(f"{name}: pay_price {pay_price} but its lines sum to {line_total.get(order_id, 0)}")
    problems += [
        f"order {order_no}: {kind} moves {_quantities(sorted(quantities))} but no such order"
        for order_no, by_kind in sorted(moves.items())
        for kind, quantities in sorted(by_kind.items())
    ]
    return problems


def _quantities(pairs: list[tuple[int, int]]) -> str:
    """Format [(goods id, quantity), ...] as "[goods 3 × 2, goods 5 × 1]" (duplicates stay visible)."""
    return "[" + ", ".join(f"goods {goods_id} × {quantity}" for goods_id, quantity in pairs) + "]"


@contextmanager
def _consistent_snapshot():
    """Run the checks' queries on one snapshot of the database.

    MariaDB runs read committed here: each query would see the commits made since the previous
    one, and a checkout committing in between would look like a broken invariant. A
    repeatable-read, read-only transaction gives all queries the same snapshot. SQLite's
    transaction (BEGIN IMMEDIATE here) is a snapshot already. Inside an outer transaction
    (tests), the outer one's view is used as it is.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "mysql":
            with connection.cursor() as cursor:
                # Allowed before the transaction's first statement; applies to this transaction only.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield
