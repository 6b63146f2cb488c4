"""Reads of stock and its ledger."""

from collections.abc import Iterable

from django.db.models import Case, F, IntegerField, QuerySet, Sum, When

from inventory.models import Stock, StockMove


def stock_list() -> QuerySet[Stock]:
    return Stock.objects.select_related("goods").order_by("goods_id")


def ledger_discrepancies() -> list[dict]:
    """Select the goods whose quantity differs from Σ adjust + Σ return − Σ sell of the ledger (should be none)."""
    signed_units = Case(
        When(kind=StockMove.Kind.SELL, then=-F("quantity")),
        default=F("quantity"),
        output_field=IntegerField(),
    )
    ledger = dict(StockMove.objects.values_list("goods_id").annotate(total=Sum(signed_units)).order_by())
    return [
        {"goods": goods_id, "quantity": quantity, "ledger": ledger.get(goods_id, 0)}
        for goods_id, quantity in Stock.objects.values_list("goods_id", "quantity")
        if ledger.get(goods_id, 0) != quantity
    ]


def goods_ids_with_stock(*, goods_ids: Iterable[int]) -> set[int]:
    """Return those of ``goods_ids`` that have a stock row."""
    return set(Stock.objects.filter(goods_id__in=list(goods_ids)).values_list("goods_id", flat=True))
