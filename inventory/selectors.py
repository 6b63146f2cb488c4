"""Reads of stock and its ledger."""

from django.db.models import Case, F, IntegerField, QuerySet, Sum, When

from inventory.models import Stock, StockMove


def stock_list() -> QuerySet[Stock]:
    return Stock.objects.select_related("goods").order_by("goods_id")


def ledger_discrepancies() -> list[dict]:
    """Goods whose quantity differs from Σ adjust + Σ return − Σ sell of the ledger (should be none)."""
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
