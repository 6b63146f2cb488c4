"""Reads of carts."""

from django.db.models import QuerySet

from carts.models import CartItem


def cart_items(*, user) -> QuerySet[CartItem]:
    """Return the user's cart with goods names and prices (one query)."""
    return CartItem.objects.filter(user=user).select_related("goods").order_by("id")
