"""Invariants of stock and its ledger; read-only (``check_stock`` runs them with the order checks).

Each check returns human-readable problems; an empty list means the invariant holds.
"""

from collections import defaultdict

from django.db.models import Count

from inventory.models import Stock, StockMove
from inventory.selectors import ledger_discrepancies

ORDER_MOVE_KINDS = (StockMove.Kind.SELL, StockMove.Kind.RETURN)


def ledger_problems() -> list[str]:
    """Check every goods: Σ adjust + Σ return − Σ sell == its stock quantity, and moves are well-formed."""
    problems = [
        f"goods {row['goods']}: stock quantity {row['quantity']} but the ledger says {row['ledger']} "
        "(Σ adjust + Σ return − Σ sell)"
        for row in ledger_discrepancies()
    ]
    # ledger_discrepancies() starts from the stock rows; a ledger without its stock row is lost stock too.
    without_stock = (
        StockMove.objects.exclude(goods_id__in=Stock.objects.values("goods_id"))
        .values_list("goods_id", flat=True)
        .distinct()
        .order_by("goods_id")
    )
    problems += [f"goods {goods_id}: ledger moves but no stock row" for goods_id in without_stock]
    problems += [
        f"goods {row['goods_id']}: {row['n']} {row['kind']} move(s) without an order number"
        for row in StockMove.objects.filter(kind__in=ORDER_MOVE_KINDS, order_no__isnull=True)
        .values("goods_id", "kind")
        .annotate(n=Count("id"))
        .order_by("goods_id", "kind")
    ]
    problems += [
        f"goods {row['goods_id']}: {row['n']} non-positive {row['kind']} move(s)"
        for row in StockMove.objects.filter(kind__in=ORDER_MOVE_KINDS, quantity__lte=0)
        .values("goods_id", "kind")
        .annotate(n=Count("id"))
        .order_by("goods_id", "kind")
    ]
    return problems


def order_moves() -> dict[str, dict[str, list[tuple[int, int]]]]:
    """Map order_no → kind (sell/return) → [(goods id, quantity), ...] for every order-related ledger row.

    Lists, not dicts: a duplicated move must stay visible to the caller's checks.
    """
    moves: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    rows = (
        StockMove.objects.filter(kind__in=ORDER_MOVE_KINDS, order_no__isnull=False)
        .order_by("id")
        .values_list("order_no", "kind", "goods_id", "quantity")
    )
    for order_no, kind, goods_id, quantity in rows.iterator(chunk_size=5000):
        moves[order_no][kind].append((goods_id, quantity))
    return moves
