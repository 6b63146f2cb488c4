"""Row locks the checkout takes on the cart: kept apart from the plain reads of ``selectors.py``."""

from carts.models import CartItem


def checked_items_for_checkout(*, user) -> list[CartItem]:
    """Return the user's checked lines, locked until the checkout commits.

    Locking them makes two checkouts of the same user (a double click, an Idempotency-Key
    retry) run one after the other, and an edit of the cart waits for the checkout.
    """
    return list(CartItem.objects.select_for_update().filter(user=user, checked=True).order_by("goods_id"))
