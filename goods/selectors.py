"""Reads of the catalog."""

from collections.abc import Iterable

from django.db.models import QuerySet

from goods.errors import GoodsNotFound, GoodsUnavailable
from goods.models import Goods


def goods_list(*, on_sale: bool | None = None, search: str | None = None) -> QuerySet[Goods]:
    """Select goods with their stock row joined (one query per page, no N+1)."""
    queryset = Goods.objects.select_related("stock").order_by("id")
    if on_sale is not None:
        queryset = queryset.filter(on_sale=on_sale)
    if search:
        queryset = queryset.filter(name__icontains=search)
    return queryset


def goods_for_sale(*, goods_id: int) -> Goods:
    """Select the goods a customer may put in the cart."""
    goods = Goods.objects.filter(pk=goods_id).first()
    if goods is None:
        raise GoodsNotFound(goods=[goods_id])
    if not goods.on_sale:
        raise GoodsUnavailable(goods=[goods_id])
    return goods


def goods_for_sale_by_id(*, goods_ids: Iterable[int]) -> dict[int, Goods]:
    """Fetch the given goods in one query; raise ``GoodsUnavailable`` if any is gone or off sale."""
    wanted = set(goods_ids)
    found = {goods.pk: goods for goods in Goods.objects.filter(pk__in=wanted, on_sale=True)}
    missing = sorted(wanted - found.keys())
    if missing:
        raise GoodsUnavailable(goods=missing)
    return found
