"""Reads of orders."""

from collections.abc import Collection
from datetime import datetime

from django.db.models import QuerySet

from orders.models import Order


def orders_of(*, user, with_events: bool = False) -> QuerySet[Order]:
    """Select the user's orders, newest first, lines (and with ``with_events`` their events) prefetched:
    one query per relation, whatever the number of orders."""
    related = ("lines", "events") if with_events else ("lines",)
    return Order.objects.filter(user=user).prefetch_related(*related).order_by("-id")


def overdue_orders(*, now: datetime, exclude: Collection[int] = ()) -> QuerySet[Order]:
    """Select the pending orders past their deadline at ``now``, oldest deadline first (index order_status_deadline),
    not in ``exclude``."""
    overdue = Order.objects.filter(status=Order.Status.PENDING, expires_at__lte=now)
    if exclude:
        overdue = overdue.exclude(pk__in=list(exclude))
    return overdue.order_by("expires_at", "id")


def overdue_order_ids(*, now: datetime, limit: int, exclude: Collection[int] = ()) -> list[int]:
    """Return the ids of the first ``limit`` of ``overdue_orders``."""
    return list(overdue_orders(now=now, exclude=exclude).values_list("pk", flat=True)[:limit])


def current_status(*, order: Order) -> str:
    """Read the order's status as committed now (after a conditional update found it no longer pending)."""
    return Order.objects.values_list("status", flat=True).get(pk=order.pk)
