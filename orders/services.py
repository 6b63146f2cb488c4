"""Writes of orders: checkout, pay, cancel and the payment-timeout closes."""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from opentelemetry import trace

from carts.errors import CartEmpty
from carts.locks import checked_items_for_checkout
from carts.services import delete_ordered_items
from goods.selectors import goods_for_sale_by_id
from inventory.services import deduct_stock, return_stock, return_stock_of_orders
from mall.db import in_callers_transaction, retry_on_lock_conflict
from mall.errors import DomainError
from mall.telemetry import format_span_id, format_trace_id, names
from mall.telemetry.spans import operation_span
from orders import metrics
from orders.errors import CheckoutFaultInjected, IdempotencyKeyReused, OrderNotPending, OrderTooLarge
from orders.events import record_closed_events, record_event
from orders.models import Order, OrderEvent, OrderLine, new_order_no
from orders.selectors import current_status, overdue_orders

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("mall.orders")

_PAY_PRICE_FIELD = Order._meta.get_field("pay_price")
MAX_PAY_PRICE = Decimal(10) ** (_PAY_PRICE_FIELD.max_digits - _PAY_PRICE_FIELD.decimal_places) - Decimal("0.01")
# The unique constraints a racing checkout may lose and retry: the Idempotency-Key and the order number.
RETRIED_CONSTRAINTS = frozenset({"order_idempotency_key_per_user", Order._meta.get_field("order_no").column})


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    created: bool  # False: an earlier request with the same Idempotency-Key made this order
    lines: list[OrderLine] | None = None  # the lines just saved (None for a replay): no need to read them back


def create_order(
    *,
    user,
    address: str,
    signer_name: str,
    signer_mobile: str,
    post: str = "",
    note: str = "",
    idempotency_key: str | None = None,
) -> CheckoutResult:
    """Turn the user's checked cart lines into a pending order, all in one transaction.

    Steps (each a span under ``create_order``): read the checked cart lines, price them from
    the goods, save the order and its lines, clear those cart lines, deduct stock and schedule
    the payment timeout. Any failure rolls everything back. With an ``idempotency_key``, a
    repeated request returns the first order instead of placing another one.
    """
    fields = dict(address=address, signer_name=signer_name, signer_mobile=signer_mobile, post=post, note=note)
    with operation_span(tracer, names.CREATE_ORDER, attributes={names.USER_ID: str(user.pk)}) as span:
        started = time.perf_counter()
        try:
            result = _earlier_or_new_order(
                user=user,
                span=span,
                idempotency_key=idempotency_key or None,
                request_fingerprint=_fingerprint(**fields),
                fields=fields,
            )
        except Exception as exc:
            _record_checkout(user=user, started=started, error=exc)
            raise
        _record_checkout(user=user, started=started, result=result)
        return _describe(span, result)


def _fingerprint(**fields) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@retry_on_lock_conflict(unique_races=RETRIED_CONSTRAINTS)
def _earlier_or_new_order(*, user, span, idempotency_key, request_fingerprint, fields) -> CheckoutResult:
    """The order an earlier request with this key placed, else a new one.

    Run again when it lost a lock, or lost the race for the key to a concurrent request (the next attempt
    finds that request's order) or, vanishingly rarely, for the order number.
    """
    earlier = _earlier_order(user=user, idempotency_key=idempotency_key, fingerprint=request_fingerprint)
    if earlier is not None:
        return CheckoutResult(earlier, created=False)
    return _place_order(
        user=user, span=span, idempotency_key=idempotency_key, request_fingerprint=request_fingerprint, fields=fields
    )


def _earlier_order(*, user, idempotency_key: str | None, fingerprint: str) -> Order | None:
    """The order placed by an earlier request with this Idempotency-Key (None without a key).

    The same key with a different request body is refused (``IdempotencyKeyReused``).
    """
    if idempotency_key is None:
        return None
    order = Order.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if order is not None and order.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return order


def _place_order(*, user, span, idempotency_key, request_fingerprint, fields) -> CheckoutResult:
    with transaction.atomic():
        with _step("select_shopcart"):
            items = checked_items_for_checkout(user=user)
            if not items:
                # The retry of a checkout that already emptied the cart gets that order.
                earlier = _earlier_order(user=user, idempotency_key=idempotency_key, fingerprint=request_fingerprint)
                if earlier is not None:
                    return CheckoutResult(earlier, created=False)
                raise CartEmpty()
        span.set_attribute(names.ORDER_LINE_COUNT, len(items))

        with _step("query_goods"):
            goods_by_id = goods_for_sale_by_id(goods_ids=[item.goods_id for item in items])
            lines = [
                OrderLine(
                    goods_id=item.goods_id,
                    goods_name=goods_by_id[item.goods_id].name,
                    goods_price=goods_by_id[item.goods_id].price,
                    nums=item.nums,
                )
                for item in items
            ]
            pay_price = sum((line.goods_price * line.nums for line in lines), Decimal("0.00"))
            if pay_price > MAX_PAY_PRICE:
                raise OrderTooLarge(max_pay_price=str(MAX_PAY_PRICE))

        order_no = new_order_no(user_id=user.pk, now=timezone.now())
        with _step("save_order"):
            order = Order.objects.create(
                order_no=order_no,
                user=user,
                pay_price=pay_price,
                expires_at=timezone.now() + timedelta(seconds=settings.ORDER_PAY_TIMEOUT),
                trace_id=format_trace_id(span),
                span_id=format_span_id(span),
                idempotency_key=idempotency_key,
                request_fingerprint=request_fingerprint,
                **fields,
            )
            record_event(order=order, kind=OrderEvent.Kind.PLACED, at=order.created_at, actor=OrderEvent.Actor.CUSTOMER)

        with _step("save_order_goods"):
            for line in lines:
                line.order = order
            OrderLine.objects.bulk_create(lines)

        with _step("delete_shopcart"):
            delete_ordered_items(item_ids=[item.pk for item in items])

        # After the other writes, so that the stock rows of popular goods stay locked only for the
        # deduction and the commit (10.9 → 2.4 ms per checkout, docs/PERFORMANCE.md).
        with _step("query_inv"):
            deduct_stock(order_no=order_no, quantities={item.goods_id: item.nums for item in items})

        # Last, after any lock wait: a schedule row written here is uncommitted only until the commit
        # that follows, so django-q2's locking scan of the schedules never waits behind a checkout
        # that is itself waiting (for a hot item's stock row, say).
        with _step("schedule_timeout"):
            schedule_order_timeout(order=order)
    return CheckoutResult(order, created=True, lines=lines)


@contextmanager
def _step(name: str) -> Iterator[trace.Span]:
    """A checkout step (``names.CHECKOUT_STEPS``): its own span under ``create_order``."""
    with operation_span(tracer, name) as span, _fault_injection_point(name):
        yield span


@contextmanager
def _fault_injection_point(step: str) -> Iterator[None]:
    """With ``CHECKOUT_FAIL_STEP`` naming ``step`` (a demo and test switch), the step fails at its end:
    after its writes, so that the rollback of a partial checkout is what gets exercised."""
    yield
    if step == settings.CHECKOUT_FAIL_STEP:
        raise CheckoutFaultInjected(step=step)


def _record_checkout(*, user, started: float, result: CheckoutResult | None = None, error: Exception | None = None):
    """A checkout's outcome, recorded in one place: its log line and its metrics by outcome (``placed``,
    a refusal's code, or ``error`` for a fault). A replay placed nothing: neither logged nor counted."""
    if result is not None and not result.created:
        return
    if result is not None:
        outcome = "placed"
        logger.info("order placed order_no=%s pay_price=%s", result.order.order_no, result.order.pay_price)
    elif isinstance(error, DomainError):
        outcome = error.code if error.code in metrics.CHECKOUT_OUTCOMES else metrics.CHECKOUT_ERROR
        logger.warning("checkout refused code=%s user_id=%s", error.code, user.pk)
    else:
        outcome = metrics.CHECKOUT_ERROR
        logger.error("checkout failed user_id=%s", user.pk, exc_info=error)
    metrics.orders_placed.add(1, {"outcome": outcome})
    metrics.checkout_duration.record(time.perf_counter() - started, {"outcome": outcome})


def _describe(span, result: CheckoutResult) -> CheckoutResult:
    if span.is_recording():  # an unsampled checkout computes none of its attributes
        _name_order(span, result.order)
        span.set_attribute(names.ORDER_PAY_PRICE, str(result.order.pay_price))
        if not result.created:
            span.set_attribute(names.ORDER_REPLAYED, True)
    return result


def _name_order(span, order: Order) -> None:
    """The order's number and id on ``span``: a search by the tag mall.order.no finds every trace of an order."""
    span.set_attribute(names.ORDER_NO, order.order_no)
    span.set_attribute(names.ORDER_ID, order.pk)


@in_callers_transaction
def schedule_order_timeout(*, order: Order) -> None:
    """Schedule the close of ``order`` at its deadline, in the caller's transaction.

    django-q2 writes schedules as rows of its own table, so the timeout commits or rolls back with the
    order: an order never exists without its timeout. One schedule covers every deadline of a
    ``BUCKET_SECONDS`` bucket (``orders.timeouts``); the close links to the checkout through the span
    ids stored on the order.
    """
    from orders.timeouts import ensure_close_scheduled  # orders.timeouts imports this module

    ensure_close_scheduled(deadline=order.expires_at)


def pay_order(*, order: Order) -> Order:
    """Simulated payment by the customer: pending → paid before the deadline, else ``OrderNotPending``.

    Span ``pay_order``; the ``paid`` event is written in the payment's transaction. An order past its
    deadline is no longer payable even before the timeout task closed it.
    """
    with operation_span(tracer, names.PAY_ORDER) as span:
        _name_order(span, order)
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
    with operation_span(tracer, names.CANCEL_ORDER, attributes={names.ORDER_ACTOR: actor}) as span:
        _name_order(span, order)
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
