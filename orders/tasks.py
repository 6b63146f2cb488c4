"""django-q2 tasks: the payment timeout (the original's RocketMQ delay message and its consumer)."""

import logging
import time

from django.utils import timezone
from opentelemetry import trace
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mall.telemetry import flush_telemetry, new_root_context
from orders.models import Order
from orders.selectors import overdue_order_ids
from orders.services import close_unpaid_order as close_order_if_overdue

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("mall.orders.tasks")

SWEEP_BATCH_SIZE = 500
SWEEP_TIME_BUDGET = 45.0  # seconds; below the cluster's task timeout, the next sweep goes on


def _checkout_span_context(order: Order, traceparent: str) -> SpanContext | None:
    """The create_order span of the order: from the task's traceparent, else stored on the order."""
    if traceparent:
        context = trace.get_current_span(
            TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        ).get_span_context()
        if context.is_valid:
            return context
    if order.trace_id and order.span_id:
        return SpanContext(
            trace_id=int(order.trace_id, 16),
            span_id=int(order.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    return None


def _close_traced(order_id: int, traceparent: str = "") -> str:
    """One close in its own trace ``close_unpaid_order``, linked to the order's checkout span."""
    with tracer.start_as_current_span("close_unpaid_order", context=new_root_context(), kind=SpanKind.CONSUMER) as span:
        span.set_attribute("mall.order.id", order_id)
        order = Order.objects.filter(pk=order_id).first()
        if order is None:
            span.set_attribute("mall.order.outcome", "skipped_missing")
            return "skipped_missing"
        checkout = _checkout_span_context(order, traceparent)
        if checkout is not None:
            span.add_link(checkout, {"mall.link": "create_order"})
        span.set_attribute("mall.order.no", order.order_no)
        outcome = close_order_if_overdue(order=order)
        span.set_attribute("mall.order.outcome", outcome)
        return outcome


def close_unpaid_order(order_id: int, traceparent: str = "") -> str:
    """Task scheduled by the checkout for the order's deadline: close it if still unpaid."""
    try:
        return _close_traced(order_id, traceparent)
    finally:
        flush_telemetry()  # task workers end with os._exit: nothing is flushed at exit


def close_overdue_orders(batch_size: int = SWEEP_BATCH_SIZE) -> int:
    """Safety net (every minute): close pending orders past their deadline whose timeout was lost.

    The one-off schedules normally do this; this sweep covers lost tasks (Redis broker, killed
    workers) and outages. Works in batches within a time budget; returns how many it closed.
    An order whose close fails is logged and left for the next sweep, so it cannot block the rest.
    """
    started = time.monotonic()
    closed = 0
    passed_over: set[int] = set()  # not closed in this sweep (failed, or taken by pay/cancel): not fetched again
    failures = 0
    try:
        while time.monotonic() - started < SWEEP_TIME_BUDGET:
            overdue = overdue_order_ids(now=timezone.now(), limit=batch_size + len(passed_over))
            order_ids = [order_id for order_id in overdue if order_id not in passed_over]
            if not order_ids:
                break
            for order_id in order_ids:
                try:
                    outcome = _close_traced(order_id)
                except Exception:
                    logger.exception("safety net could not close order_id=%s", order_id)
                    outcome = "failed"
                    failures += 1
                if outcome == "closed":
                    closed += 1
                else:
                    passed_over.add(order_id)
        if closed or failures:
            logger.info("safety net closed overdue orders count=%s failed=%s", closed, failures)
        return closed
    finally:
        flush_telemetry()
