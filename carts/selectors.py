"""Reads of carts."""

from django.db.models import QuerySet

from carts.models import CartItem


def cart_items(*, user) -> QuerySet[CartItem]:
    """The user's cart with goods names and prices (one query)."""
    return CartItem.objects.filter(user=user).select_related("goods").order_by("id")


def checked_items_for_checkout(*, user) -> list[CartItem]:
    """The user's checked lines, locked until the checkout commits.

    Locking them makes two checkouts of the same user (a double click, an Idempotency-Key
    retry) run one after the other, and an edit of the cart waits for the checkout.
    """
    return list(CartItem.objects.select_for_update().filter(user=user, checked=True).order_by("goods_id"))
