"""Writes of carts."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from carts.errors import CartFull, CartItemGone, CartLineTooLarge
from carts.models import CartItem
from goods.models import Goods
from goods.selectors import goods_for_sale
from mall.db import in_callers_transaction, retry_on_lock_conflict


@retry_on_lock_conflict
def add_to_cart(*, user, goods_id: int, quantity: int, checked: bool = True) -> CartItem:
    """Put ``quantity`` of a goods in the cart, adding to the line of that goods if there is one.

    Three statements: the goods, the user's lines (locked: adds, edits and checkouts of one user
    queue; it gives both the line to add to and the line count), then one insert or update.
    """
    goods = goods_for_sale(goods_id=goods_id)
    try:
        return _add_line(user=user, goods=goods, quantity=quantity, checked=checked)
    except IntegrityError:
        # A concurrent first add of the same goods won the insert: its line exists now; add to it.
        return _add_line(user=user, goods=goods, quantity=quantity, checked=checked)


def _add_line(*, user, goods: Goods, quantity: int, checked: bool) -> CartItem:
    with transaction.atomic():
        lines = list(CartItem.objects.select_for_update().filter(user=user))
        item = next((line for line in lines if line.goods_id == goods.pk), None)
        if item is None:
            if len(lines) >= settings.MAX_CART_LINES:
                raise CartFull()
            return CartItem.objects.create(user=user, goods=goods, nums=quantity, checked=checked)
        if item.nums + quantity > settings.MAX_CART_LINE_NUMS:
            raise CartLineTooLarge(max_nums=settings.MAX_CART_LINE_NUMS)
        item.nums += quantity  # the row is locked: nobody else changes it before the commit
        item.checked = checked
        item.goods = goods
        item.save(update_fields=["nums", "checked", "updated_at"])
        return item


@retry_on_lock_conflict
def update_cart_item(*, item: CartItem, quantity: int | None = None, checked: bool | None = None) -> CartItem:
    """Change a line's quantity and/or checked flag; ``CartItemGone`` if a checkout took it meanwhile."""
    fields = {}
    if quantity is not None:
        fields["nums"] = quantity
    if checked is not None:
        fields["checked"] = checked
    if not fields:
        return item
    with transaction.atomic():
        # The update locks the line: a checkout cannot take it between the update and the read.
        if not CartItem.objects.filter(pk=item.pk).update(**fields, updated_at=timezone.now()):
            raise CartItemGone()
        return CartItem.objects.select_related("goods").get(pk=item.pk)


@retry_on_lock_conflict
def delete_cart_item(*, item: CartItem) -> None:
    """Remove a line; ``CartItemGone`` if a checkout took it meanwhile."""
    deleted, _ = CartItem.objects.filter(pk=item.pk).delete()
    if not deleted:
        raise CartItemGone()


@in_callers_transaction
def delete_ordered_items(*, item_ids: list[int]) -> int:
    """Remove the cart lines an order was made from, in the checkout's transaction; returns how many were removed."""
    deleted, _ = CartItem.objects.filter(pk__in=item_ids).delete()
    return deleted
