"""Writes of orders after the checkout (``orders.checkout``): pay and cancel, and the end of a pending order they
share with the payment timeout's close (``orders.expiry``)."""

import logging
from collections.abc import Mapping
from datetime import datetime

from django.db import transaction
from django.utils import timezone

import faults
from inventory.services import return_stock
from mall.db import in_callers_transaction, retry_on_lock_conflict
from mall.telemetry.spans import operation_span
from orders import metrics, tracing
from orders.errors import OrderEnded, OrderNotPending
from orders.events import record_event
from orders.models import Order, OrderEvent, OrderLine
from orders.selectors import current_status
from orders.tracing import name_order

logger = logging.getLogger(__name__)
tracer = tracing.tracer


def pay_order(*, order: Order) -> Order:
    """Pay an order (a simulated payment by the customer): pending → paid before the deadline, else ``OrderNotPending``.

    Span ``pay_order``; the ``paid`` event is written in the payment's transaction. An order past its
    deadline is no longer payable even before the timeout task closed it.
    """
    with operation_span(tracer, tracing.PAY_ORDER):
        name_order(order)
        now = timezone.now()
        with transaction.atomic(), faults.inject(tracing.PAY_ORDER):
            updated = Order.objects.filter(pk=order.pk, status=Order.Status.PENDING, expires_at__gt=now).update(
                status=Order.Status.PAID, paid_at=now, updated_at=now
            )
            if updated:
                record_event(order=order, kind=OrderEvent.Kind.PAID, at=now, actor=OrderEvent.Actor.CUSTOMER)
        if not updated:
            status = current_status(order=order)
            if status == Order.Status.PENDING:
                raise OrderNotPending("The order is past its payment deadline.", status="expired")
            raise OrderNotPending(status=status)
        order.refresh_from_db()
        logger.info("order paid order_no=%s", order.order_no)
        return order


# The fields a staff edit may change; an ended (cancelled or closed) order only its note.
STAFF_EDITABLE_FIELDS = ("address", "signer_name", "signer_mobile", "post", "note")
_ENDED_EDITABLE_FIELDS = ("note",)


@retry_on_lock_conflict
def edit_order(*, order: Order, staff_user, changes: Mapping[str, str]) -> Order:
    """Write a staff edit of ``changes`` (field → new value) and nothing else, with an ``edited`` event.

    Under the order's row lock (the first row of the shop's lock order, ``inventory.locks``), so a pay,
    cancel or close that committed since the form was read is kept: only the named columns are
    written. ``OrderEnded`` if the order was cancelled or closed and a field other than the note changes.
    """
    unknown = set(changes) - set(STAFF_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable by staff: {sorted(unknown)}")
    now = timezone.now()
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        ended = locked.status in (Order.Status.CANCELLED, Order.Status.CLOSED)
        if ended and set(changes) - set(_ENDED_EDITABLE_FIELDS):
            raise OrderEnded()
        if changes:
            Order.objects.filter(pk=order.pk).update(**changes, updated_at=now)
            record_event(
                order=order, kind=OrderEvent.Kind.EDITED, at=now, actor=OrderEvent.Actor.STAFF, staff_user=staff_user
            )
    order.refresh_from_db()
    logger.info("order edited order_no=%s fields=%s", order.order_no, ",".join(sorted(changes)))
    return order


@retry_on_lock_conflict
def cancel_order(*, order: Order, staff_user=None) -> Order:
    """Cancel a pending order for the customer (or, with ``staff_user``, staff); its stock is returned once.

    Span ``cancel_order``; the ``cancelled`` event is written in the cancellation's transaction. Lock
    order (``inventory.locks``): the order row, then the goods rows (shared, by the return's ledger
    insert), then the stock rows. A lost deadlock or lock wait is retried.
    """
    actor = OrderEvent.Actor.STAFF if staff_user is not None else OrderEvent.Actor.CUSTOMER
    with operation_span(tracer, tracing.CANCEL_ORDER, attributes={tracing.ORDER_ACTOR: actor}):
        name_order(order)
        now = timezone.now()
        with transaction.atomic(durable=True), faults.inject(tracing.CANCEL_ORDER):
            if not end_pending_order(order=order, status=Order.Status.CANCELLED, now=now):
                raise OrderNotPending(status=current_status(order=order))
            record_event(order=order, kind=OrderEvent.Kind.CANCELLED, at=now, actor=actor, staff_user=staff_user)
        metrics.orders_closed.add(1, {"reason": "cancelled"})
        order.refresh_from_db()
        logger.info("order cancelled order_no=%s actor=%s", order.order_no, actor)
        return order


@in_callers_transaction
def end_pending_order(*, order: Order, status: str, now: datetime, due_by: datetime | None = None) -> bool:
    """End a pending order: → ``status`` with one conditional update, then the stock back; False if not pending.

    Of racing pay/cancel/close transitions exactly one updates the row; only that one returns
    stock, in the same transaction.
    """
    pending = Order.objects.filter(pk=order.pk, status=Order.Status.PENDING)
    if due_by is not None:
        pending = pending.filter(expires_at__lte=due_by)
    if not pending.update(status=status, ended_at=now, updated_at=now):
        return False
    quantities = dict(OrderLine.objects.filter(order_id=order.pk).values_list("goods_id", "nums"))
    units = return_stock(order_no=order.order_no, quantities=quantities)
    metrics.stock_returned.add(units)
    return True
