"""Writes of the catalog."""

from decimal import Decimal

from goods.models import Goods


def create_goods(*, name: str, price: Decimal, description: str = "", on_sale: bool = True) -> Goods:
    """Put a goods in the catalog, without stock: ``inventory.services.create_goods_with_stock`` gives it its
    stock row in the same transaction, and is how goods enter the shop."""
    if price < 0:
        raise ValueError("a price cannot be negative")
    return Goods.objects.create(name=name, price=price, description=description, on_sale=on_sale)
