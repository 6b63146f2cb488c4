"""Writes of stock: every change goes through here and leaves a ledger row."""

from collections.abc import Mapping

from django.db import transaction

from inventory.errors import InsufficientStock
from inventory.models import Stock, StockMove


def _locked_stock(goods_ids) -> list[Stock]:
    # One locking read in goods-id order: concurrent checkouts take row locks in the same
    # order, so they queue instead of deadlocking.
    return list(Stock.objects.select_for_update().filter(goods_id__in=goods_ids).order_by("goods_id"))


def deduct_stock(*, order_no: str, quantities: Mapping[int, int]) -> None:
    """Take ``quantities`` (goods id → units) for an order, all or nothing.

    Three statements whatever the number of lines: lock, bulk update, ledger insert.
    Must run inside the caller's transaction (the locks are held until it commits).
    """
    stocks = _locked_stock(quantities.keys())
    available = {stock.goods_id: stock.quantity for stock in stocks}
    short = sorted(goods_id for goods_id, units in quantities.items() if available.get(goods_id, 0) < units)
    if short:
        raise InsufficientStock(goods=short)
    for stock in stocks:
        stock.quantity -= quantities[stock.goods_id]
    Stock.objects.bulk_update(stocks, ["quantity"])
    StockMove.objects.bulk_create(
        StockMove(goods_id=goods_id, order_no=order_no, kind=StockMove.Kind.SELL, quantity=units)
        for goods_id, units in quantities.items()
    )


def return_stock(*, order_no: str, quantities: Mapping[int, int]) -> int:
    """Give an order's units back; returns the units returned.

    Call it once per order, in the transaction that moved the order out of ``pending``: that
    conditional update is what makes the return happen once, and the ledger's unique
    (order_no, goods, kind) constraint refuses a second return should a caller ever try.
    """
    stocks = _locked_stock(quantities.keys())
    for stock in stocks:
        stock.quantity += quantities[stock.goods_id]
    Stock.objects.bulk_update(stocks, ["quantity"])
    StockMove.objects.bulk_create(
        StockMove(
            goods_id=stock.goods_id, order_no=order_no, kind=StockMove.Kind.RETURN, quantity=quantities[stock.goods_id]
        )
        for stock in stocks
    )
    return sum(quantities[stock.goods_id] for stock in stocks)


@transaction.atomic
def set_stock_quantity(*, goods_id: int, quantity: int) -> Stock:
    """Set the quantity of a goods (staff), creating the stock row if needed; the delta is ledgered."""
    if quantity < 0:
        raise ValueError("stock quantity cannot be negative")
    stock = Stock.objects.select_for_update().filter(goods_id=goods_id).first()
    if stock is None:
        stock = Stock.objects.create(goods_id=goods_id, quantity=0)
    delta = quantity - stock.quantity
    if delta:
        stock.quantity = quantity
        stock.save(update_fields=["quantity", "updated_at"])
        StockMove.objects.create(goods_id=goods_id, kind=StockMove.Kind.ADJUST, quantity=delta)
    return stock
