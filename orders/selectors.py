"""Reads of orders."""

from datetime import datetime

from django.db.models import QuerySet

from orders.models import Order


def orders_of(*, user) -> QuerySet[Order]:
    """The user's orders, newest first, lines prefetched (two queries per page)."""
    return Order.objects.filter(user=user).prefetch_related("lines").order_by("-id")


def overdue_order_ids(*, now: datetime, limit: int) -> list[int]:
    """Pending orders past their deadline (index order_status_deadline)."""
    return list(
        Order.objects.filter(status=Order.Status.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:limit]
    )
