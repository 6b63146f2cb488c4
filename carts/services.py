"""Writes of carts."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from carts.errors import CartFull, CartItemGone, CartLineTooLarge
from carts.models import CartItem
from goods.selectors import goods_for_sale
from mall.db import retry_on_lock_conflict


@retry_on_lock_conflict
def add_to_cart(*, user, goods_id: int, nums: int, checked: bool = True) -> CartItem:
    """Put ``nums`` units of a goods in the cart, adding to the line of that goods if there is one.

    Three statements: the goods, the user's lines (locked: adds, edits and checkouts of one user
    queue; it gives both the line to add to and the line count), then one insert or update.
    """
    goods = goods_for_sale(goods_id=goods_id)
    for _ in range(2):  # a concurrent first add of the same goods wins the insert; then we add to it
        try:
            with transaction.atomic():
                lines = list(CartItem.objects.select_for_update().filter(user=user))
                item = next((line for line in lines if line.goods_id == goods.pk), None)
                if item is None:
                    if len(lines) >= settings.MAX_CART_LINES:
                        raise CartFull()
                    return CartItem.objects.create(user=user, goods=goods, nums=nums, checked=checked)
                if item.nums + nums > settings.MAX_CART_LINE_NUMS:
                    raise CartLineTooLarge(max_nums=settings.MAX_CART_LINE_NUMS)
                item.nums += nums  # the row is locked: nobody else changes it before the commit
                item.checked = checked
                item.goods = goods
                item.save(update_fields=["nums", "checked", "updated_at"])
                return item
        except IntegrityError:
            continue
    raise CartLineTooLarge()  # pragma: no cover - two lost races in a row cannot happen with a unique line


@retry_on_lock_conflict
def update_cart_item(*, item: CartItem, nums: int | None = None, checked: bool | None = None) -> CartItem:
    """Change a line's units and/or checked flag; ``CartItemGone`` (404) if a checkout took it meanwhile."""
    fields = {}
    if nums is not None:
        fields["nums"] = nums
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
    """Remove a line; ``CartItemGone`` (404) if a checkout took it meanwhile."""
    deleted, _ = CartItem.objects.filter(pk=item.pk).delete()
    if not deleted:
        raise CartItemGone()


def delete_ordered_items(*, item_ids: list[int]) -> int:
    """Remove the cart lines an order was made from; returns how many were removed."""
    deleted, _ = CartItem.objects.filter(pk__in=item_ids).delete()
    return deleted
