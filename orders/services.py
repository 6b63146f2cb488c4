"""Writes of orders after the checkout (``orders.checkout``): pay, cancel, and the payment-timeout closes."""

import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone
from opentelemetry import trace

from inventory.services import return_stock, return_stock_of_orders
from mall.db import in_callers_transaction, retry_on_lock_conflict
from mall.telemetry import names
from mall.telemetry.spans import operation_span
from orders import metrics
from orders.errors import OrderNotPending
from orders.events import record_closed_events, record_event
from orders.models import Order, OrderEvent, OrderLine
from orders.selectors import current_status, overdue_orders
from orders.tracing import name_order

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("mall.orders")


def pay_order(*, order: Order) -> Order:
    """Simulated payment by the customer: pending → paid before the deadline, else ``OrderNotPending``.

    Span ``pay_order``; the ``paid`` event is written in the payment's transaction. An order past its
    deadline is no longer payable even before the timeout task closed it.
    """
    with operation_span(tracer, names.PAY_ORDER):
        name_order(order)
        now = timezone.now()
        with transaction.atomic():
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


@retry_on_lock_conflict
def cancel_order(*, order: Order, staff_user=None) -> Order:
    """The customer (or, with ``staff_user``, staff) cancels a pending order; its stock is returned once.

    Span ``cancel_order``; the ``cancelled`` event is written in the cancellation's transaction. Lock
    order (``inventory.locks``): the order row, then the goods rows (shared, by the return's ledger
    insert), then the stock rows. A lost deadlock or lock wait is retried.
    """
    actor = OrderEvent.Actor.STAFF if staff_user is not None else OrderEvent.Actor.CUSTOMER
    with operation_span(tracer, names.CANCEL_ORDER, attributes={names.ORDER_ACTOR: actor}):
        name_order(order)
        now = timezone.now()
        with transaction.atomic():
            if not _end_pending_order(order=order, status=Order.Status.CANCELLED, now=now):
                raise OrderNotPending(status=current_status(order=order))
            record_event(order=order, kind=OrderEvent.Kind.CANCELLED, at=now, actor=actor, staff_user=staff_user)
        metrics.orders_closed.add(1, {"reason": "cancelled"})
        order.refresh_from_db()
        logger.info("order cancelled order_no=%s actor=%s", order.order_no, actor)
        return order


@in_callers_transaction
def _end_pending_order(*, order: Order, status: str, now: datetime, due_by: datetime | None = None) -> bool:
    """pending → ``status`` with one conditional update, then the stock back; False if not pending.

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


_SKIPPED = {
    Order.Status.PAID: "skipped_paid",
    Order.Status.CANCELLED: "skipped_cancelled",
    Order.Status.CLOSED: "skipped_closed",
    Order.Status.PENDING: "skipped_not_due",
}


@retry_on_lock_conflict
def close_order_if_overdue(*, order: Order, now: datetime | None = None, actor: str = OrderEvent.Actor.TIMEOUT) -> str:
    """Close ``order`` if it is still pending past its deadline; returns the outcome.

    Outcomes: ``closed`` or ``skipped_paid`` / ``skipped_cancelled`` / ``skipped_closed`` /
    ``skipped_not_due``. Safe to run any number of times, concurrently, and racing pay/cancel.
    Same lock order as ``cancel_order``; a lost deadlock or lock wait is retried here.
    A close writes its ``closed`` event (by ``actor``: the timeout task or the sweep) in its transaction.
    """
    now = now or timezone.now()
    with transaction.atomic():
        closed = _end_pending_order(order=order, status=Order.Status.CLOSED, now=now, due_by=now)
        if closed:
            record_event(order=order, kind=OrderEvent.Kind.CLOSED, at=now, actor=actor)
    if closed:
        metrics.orders_closed.add(1, {"reason": "timeout"})
        logger.info("order closed unpaid order_no=%s", order.order_no)
        return "closed"
    return _SKIPPED[current_status(order=order)]


class ClosedOrder(NamedTuple):
    """An order closed by ``close_overdue_batch``, with its create_order span (hex ids; empty if untraced)."""

    id: int
    order_no: str
    trace_id: str
    span_id: str


@retry_on_lock_conflict
def close_overdue_batch(
    *,
    now: datetime,
    limit: int,
    exclude: Collection[int] = (),
    actor: str = OrderEvent.Actor.SWEEP,
    trace_closes: Callable[[list[ClosedOrder]], Mapping[int, str]] | None = None,
) -> list[ClosedOrder]:
    """Close up to ``limit`` orders still pending past their deadline at ``now``, in ONE transaction.

    Seven statements and one commit whatever the batch size: lock the batch (oldest deadline first,
    index order_status_deadline; with SKIP LOCKED where the database has it, so orders a pay, cancel
    or per-order close holds right now are passed over, not waited for), mark exactly those orders
    closed, read their lines, and return their stock (one lock of the goods' stock rows, one relative
    update, one ledger insert: ``return_stock_of_orders``), and one insert of their ``closed`` events.
    Orders in ``exclude`` are not taken. The events name the current trace, or with ``trace_closes`` the
    trace it returns for each order (it is given the batch once it is locked; the deadline buckets' task
    starts each order's own ``close_unpaid_order`` trace there).

    Returns the orders closed, oldest deadline first (empty: nothing left to close). Any error rolls
    the whole batch back, nothing closed and no stock moved: the caller may close those orders one by
    one (``close_order_if_overdue``) to pass over a broken one. Deadlocks and lock waits are retried.
    """
    with transaction.atomic():
        overdue = overdue_orders(now=now, exclude=exclude).select_for_update(
            skip_locked=connection.features.has_select_for_update_skip_locked
        )
        batch = [ClosedOrder(*row) for row in overdue.values_list("id", "order_no", "trace_id", "span_id")[:limit]]
        if not batch:
            return []
        ids = [order.id for order in batch]
        updated = Order.objects.filter(pk__in=ids, status=Order.Status.PENDING).update(
            status=Order.Status.CLOSED, ended_at=now, updated_at=now
        )
        if updated != len(batch):
            # Cannot happen while the batch holds its rows (locked, or SQLite's single writer); should it
            # ever, which orders changed is unknown: roll back rather than return the stock of an order
            # that someone else ended. The caller closes them one by one.
            raise RuntimeError(f"closing overdue orders: {updated} of {len(batch)} locked orders were still pending")
        order_no_of = {order.id: order.order_no for order in batch}
        quantities_by_order: dict[str, dict[int, int]] = {order.order_no: {} for order in batch}
        lines = OrderLine.objects.filter(order_id__in=ids).order_by().values_list("order_id", "goods_id", "nums")
        for order_id, goods_id, nums in lines:
            quantities_by_order[order_no_of[order_id]][goods_id] = nums
        units = return_stock_of_orders(quantities_by_order=quantities_by_order)
        record_closed_events(
            order_ids=ids, at=now, actor=actor, trace_ids=trace_closes(batch) if trace_closes is not None else None
        )
    metrics.orders_closed.add(len(batch), {"reason": "timeout"})
    metrics.stock_returned.add(units)
    logger.info("overdue orders closed unpaid count=%s units_returned=%s", len(batch), units)
    return batch
