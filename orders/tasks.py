"""django-q2 tasks: the payment timeout (the original's RocketMQ delay message and its consumer) and its safety net."""

import logging
import time

from django.utils import timezone
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, SpanKind

from mall.telemetry import flush_telemetry, names, new_root_context
from mall.telemetry.links import checkout_link, span_context_from_traceparent, stored_span_context
from mall.telemetry.spans import mark_failure
from orders.models import Order, OrderEvent
from orders.selectors import overdue_order_ids
from orders.services import ClosedOrder, close_overdue_batch
from orders.services import close_unpaid_order as close_order_if_overdue

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("mall.orders.tasks")

SWEEP_BATCH_SIZE = 500
SWEEP_TIME_BUDGET = 45.0  # seconds; below the cluster's task timeout, the next sweep goes on


def _checkout_span_context(order: Order, traceparent: str) -> SpanContext | None:
    """The create_order span of the order: from the task's traceparent, else stored on the order."""
    return span_context_from_traceparent(traceparent) or stored_span_context(order.trace_id, order.span_id)


def _close_traced(order_id: int, traceparent: str = "", *, actor: str = OrderEvent.Actor.TIMEOUT) -> str:
    """One close in its own trace ``close_unpaid_order``, linked to the order's checkout span."""
    with tracer.start_as_current_span(
        names.CLOSE_UNPAID_ORDER,
        context=new_root_context(),
        kind=SpanKind.CONSUMER,
        attributes={names.ORDER_ACTOR: actor},
    ) as span:
        span.set_attribute(names.ORDER_ID, order_id)
        order = Order.objects.filter(pk=order_id).first()
        if order is None:
            span.set_attribute(names.ORDER_OUTCOME, "skipped_missing")
            return "skipped_missing"
        checkout = _checkout_span_context(order, traceparent)
        if checkout is not None:
            link = checkout_link(checkout)
            span.add_link(link.context, link.attributes)
        span.set_attribute(names.ORDER_NO, order.order_no)
        outcome = close_order_if_overdue(order=order, actor=actor)
        span.set_attribute(names.ORDER_OUTCOME, outcome)
        return outcome


def close_unpaid_order(order_id: int, traceparent: str = "") -> str:
    """Task scheduled by the checkout for the order's deadline: close it if still unpaid."""
    try:
        return _close_traced(order_id, traceparent)
    finally:
        flush_telemetry()  # task workers end with os._exit: nothing is flushed at exit


def start_close_span(
    order: ClosedOrder,
    *,
    context: Context,
    actor: str,
    start_time: int,
    kind: SpanKind = SpanKind.INTERNAL,
    **attributes,
) -> trace.Span:
    """A ``close_unpaid_order`` span for an order a batch closed, linked to the order's create_order span."""
    checkout = stored_span_context(order.trace_id, order.span_id)
    return tracer.start_span(
        names.CLOSE_UNPAID_ORDER,
        context=context,
        kind=kind,
        links=[checkout_link(checkout)] if checkout is not None else (),
        attributes={
            names.ORDER_ID: order.id,
            names.ORDER_NO: order.order_no,
            names.ORDER_OUTCOME: "closed",
            names.ORDER_ACTOR: actor,
            **attributes,
        },
        start_time=start_time,
    )


def _trace_closed_orders(batch: list[ClosedOrder], *, parent: Context, begun_ns: int, committed_ns: int) -> None:
    """A ``close_unpaid_order`` span per order of a committed batch, so every order stays followable.

    Children of the batch span, linked to the order's create_order span, timed as the batch's
    transaction (begin → commit). Made after the commit: no database work, no children.
    """
    for order in batch:
        span = start_close_span(order, context=parent, actor=OrderEvent.Actor.SWEEP, start_time=begun_ns)
        span.end(end_time=committed_ns)


def _close_batch_traced(*, limit: int, exclude: set[int]) -> list[ClosedOrder] | None:
    """One batch of the sweep in its own trace ``close_overdue_orders`` (its statements are children).

    The orders closed, or None if the batch failed: rolled back, logged, its span marked ERROR.
    """
    with tracer.start_as_current_span(
        names.CLOSE_OVERDUE_ORDERS, context=new_root_context(), kind=SpanKind.CONSUMER
    ) as span:
        begun_ns = time.time_ns()
        try:
            batch = close_overdue_batch(now=timezone.now(), limit=limit, exclude=exclude)
        except Exception as exc:
            logger.exception("safety net could not close a batch of overdue orders; closing them one by one")
            mark_failure(span, exc)
            return None
        committed_ns = time.time_ns()
        span.set_attribute(names.SWEEP_CLOSED, len(batch))
        parent = trace.set_span_in_context(span)
        _trace_closed_orders(batch, parent=parent, begun_ns=begun_ns, committed_ns=committed_ns)
        return batch


def _close_one_by_one(*, limit: int, exclude: set[int], budget_ends: float) -> tuple[int, set[int], int]:
    """After a failed batch: its orders closed one by one (own transaction and trace each), until ``budget_ends``.

    Returns (closed, passed over, failures). An order that cannot be closed is logged, its span
    marked ERROR, and passed over, so it cannot block the others.
    """
    closed, passed_over, failures = 0, set(), 0
    for order_id in overdue_order_ids(now=timezone.now(), limit=limit, exclude=exclude):
        if time.monotonic() > budget_ends:
            break  # e.g. every close waits out a lock: the next sweep goes on
        try:
            outcome = _close_traced(order_id, actor=OrderEvent.Actor.SWEEP)
        except Exception:
            logger.exception("safety net could not close order_id=%s", order_id)
            outcome = "failed"
            failures += 1
        if outcome == "closed":
            closed += 1
        else:
            passed_over.add(order_id)
    return closed, passed_over, failures


def close_overdue_orders(batch_size: int = SWEEP_BATCH_SIZE) -> int:
    """Safety net (every minute): close pending orders past their deadline whose timeout was lost.

    The one-off schedules normally do this; this sweep covers lost tasks (Redis broker, killed
    workers) and outages. Works in batches of ``batch_size`` orders, one transaction and one trace
    (``close_overdue_orders``) each, within a time budget; returns how many it closed. A batch that
    fails is rolled back and its orders closed one by one: an order whose close fails is logged and
    left for the next sweep, so it cannot block the rest.
    """
    budget_ends = time.monotonic() + SWEEP_TIME_BUDGET
    closed = 0
    passed_over: set[int] = set()  # failed in this sweep, or taken by pay/cancel meanwhile: not fetched again
    failures = 0
    try:
        if not overdue_order_ids(now=timezone.now(), limit=1):
            return 0  # the usual minute: one untraced read, no trace
        while time.monotonic() < budget_ends:
            batch = _close_batch_traced(limit=batch_size, exclude=passed_over)
            if batch is None:  # rolled back: its orders one by one, passing over any that cannot be closed
                one_by_one, passed, failed = _close_one_by_one(
                    limit=batch_size, exclude=passed_over, budget_ends=budget_ends
                )
                closed += one_by_one
                failures += failed
                passed_over |= passed
                if not (one_by_one or passed):
                    break  # nothing left to try
                continue
            closed += len(batch)
            if len(batch) < batch_size:
                break  # none left (or the rest is held by a pay/cancel right now: the next sweep)
        if closed or failures:
            logger.info("safety net closed overdue orders count=%s failed=%s", closed, failures)
        return closed
    finally:
        flush_telemetry()
