"""The payment timeout: schedules by deadline bucket, the tasks' closes, and the safety-net sweep.

One django-q2 ONCE schedule per BUCKET_SECONDS of deadlines, not one per order: django-q2's scheduler
does work per due schedule (task signing, broker push, delete) and every task pays the cluster's
per-task costs (pusher, worker, result monitor, telemetry flush), so one task per order cannot follow
a busy shop (figures: docs/PERFORMANCE.md, "Payment timeout at scale"). Here the checkout makes sure a
schedule exists for the end of its deadline's bucket; that schedule's task closes every order past its deadline at that
moment, BATCH_SIZE per transaction (``close_overdue_batch``), each order in its own ``close_unpaid_order``
trace linked to its checkout. Pending schedules: ORDER_PAY_TIMEOUT ÷ BUCKET_SECONDS, whatever the
order rate. Latency: the deadline's bucket end (≤ BUCKET_SECONDS) plus the scheduler's 0–30 s.

The safety net (``sweep_overdue_orders``, every minute) closes what a lost task (Redis broker, a killed
worker) or an outage left pending. django-q2 runs these through ``orders.tasks`` and
``close_due_orders`` below, the dotted paths stored schedules name.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule

from mall.db import in_callers_transaction
from mall.telemetry import flushes_telemetry, format_trace_id, names
from mall.telemetry.closes import CloseTraces, link_to_checkout, record_batch_close_spans, task_span
from mall.telemetry.spans import mark_failure
from orders.models import Order, OrderEvent
from orders.selectors import overdue_order_ids
from orders.services import ClosedOrder, close_order_if_overdue, close_overdue_batch

logger = logging.getLogger(__name__)

BUCKET_SECONDS = 5
CLOSE_DUE_TASK = "orders.timeouts.close_due_orders"
BATCH_SIZE = 500  # orders closed per transaction
TIME_BUDGET = 45.0  # seconds a task closes for; below the cluster's task timeout, the next task goes on
_SCHEDULE_PREFIX = "close-due-orders-"

_committed: dict[str, float] = {}  # schedule name → bucket end (epoch s): known committed, in this process
_committed_lock = threading.Lock()


def bucket_end(deadline: datetime) -> datetime:
    """The end of ``deadline``'s bucket (deadlines are rounded up to a multiple of BUCKET_SECONDS)."""
    seconds = -(-deadline.timestamp() // BUCKET_SECONDS) * BUCKET_SECONDS
    return datetime.fromtimestamp(seconds, tz=UTC)


def schedule_name(end: datetime) -> str:
    return f"{_SCHEDULE_PREFIX}{int(end.timestamp())}"


def _remember(name: str, end: float) -> None:
    with _committed_lock:
        _committed[name] = end
        if len(_committed) > 2000:  # forget buckets that are over
            for old in [n for n, e in _committed.items() if e < time.time() - 60]:
                del _committed[old]


@in_callers_transaction
def ensure_close_scheduled(*, deadline: datetime) -> None:
    """Make sure a schedule closes the orders due by the end of ``deadline``'s bucket; in the caller's transaction.

    Usually nothing to do (this process saw the bucket's schedule committed); else django-q2's
    ``schedule()`` checks by name (a consistent read, never waits) and writes it. Two processes may both
    write one: the second task then finds nothing left to close.
    """
    end = bucket_end(deadline)
    name = schedule_name(end)
    if name in _committed:
        return
    with contextlib.suppress(IntegrityError):  # raised by django-q2's name check (no database error): scheduled
        schedule(CLOSE_DUE_TASK, name=name, schedule_type=Schedule.ONCE, next_run=end)
    transaction.on_commit(lambda: _remember(name, end.timestamp()))


def forget_scheduled_buckets() -> None:
    """Forget which buckets this process saw scheduled (for tests, whose database rows do not last)."""
    with _committed_lock:
        _committed.clear()


@flushes_telemetry
def close_due_orders() -> int:
    """Task of a deadline bucket's schedule: close every order past its deadline; returns how many.

    Batches of BATCH_SIZE, one transaction each (orders a pay or cancel holds are passed over, never
    waited for), within a time budget. The task is a trace ``close_due_orders``; each order closed gets
    its own ``close_unpaid_order`` trace, which its ``closed`` event names. A batch that fails is handed
    to the safety-net sweep, which closes its orders one by one.
    """
    budget_ends = time.monotonic() + TIME_BUDGET
    closed = 0
    with task_span(names.CLOSE_DUE_ORDERS) as span:
        close_traces = CloseTraces(task_trace_id=format_trace_id(span), actor=OrderEvent.Actor.TIMEOUT)
        while time.monotonic() < budget_ends:
            try:
                batch = close_overdue_batch(
                    now=timezone.now(),
                    limit=BATCH_SIZE,
                    actor=OrderEvent.Actor.TIMEOUT,
                    trace_closes=close_traces.start,
                )
            except Exception as exc:
                close_traces.fail(exc)
                logger.exception("could not close a batch of due orders; the safety net closes them one by one")
                closed += sweep_overdue_orders()
                break
            close_traces.end()
            closed += len(batch)
            if len(batch) < BATCH_SIZE:
                break
        span.set_attribute(names.TIMEOUT_CLOSED, closed)
    return closed


def close_order_traced(order_id: int, *, actor: str, traceparent: str = "") -> str:
    """Close one order (``close_order_if_overdue``) in its own trace ``close_unpaid_order``, linked to its checkout."""
    with task_span(names.CLOSE_UNPAID_ORDER, {names.ORDER_ACTOR: actor, names.ORDER_ID: order_id}) as span:
        order = Order.objects.filter(pk=order_id).first()
        if order is None:
            outcome = "skipped_missing"
        else:
            link_to_checkout(span, trace_id=order.trace_id, span_id=order.span_id, traceparent=traceparent)
            span.set_attribute(names.ORDER_NO, order.order_no)
            outcome = close_order_if_overdue(order=order, actor=actor)
        span.set_attribute(names.ORDER_OUTCOME, outcome)
        return outcome


def sweep_overdue_orders(batch_size: int = BATCH_SIZE) -> int:
    """The safety net: close pending orders past their deadline whose timeout was lost; returns how many.

    The deadline buckets' tasks normally do this; the sweep covers lost tasks (Redis broker, killed
    workers) and outages. Works in batches of ``batch_size`` orders, one transaction and one trace
    (``close_overdue_orders``) each, within a time budget. A batch that fails is rolled back and its
    orders closed one by one: an order whose close fails is logged and left for the next sweep, so it
    cannot block the rest.
    """
    if not overdue_order_ids(now=timezone.now(), limit=1):
        return 0  # the usual minute: one untraced read, no trace
    budget_ends = time.monotonic() + TIME_BUDGET
    closed, failures = 0, 0
    passed_over: set[int] = set()  # failed in this sweep, or taken by pay/cancel meanwhile: not fetched again
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


def _close_batch_traced(*, limit: int, exclude: set[int]) -> list[ClosedOrder] | None:
    """One batch of the sweep in its own trace ``close_overdue_orders`` (its statements are children).

    The orders closed, or None if the batch failed: rolled back, logged, its span marked ERROR.
    """
    with task_span(names.CLOSE_OVERDUE_ORDERS) as span:
        begun_ns = time.time_ns()
        try:
            batch = close_overdue_batch(now=timezone.now(), limit=limit, exclude=exclude)
        except Exception as exc:
            logger.exception("safety net could not close a batch of overdue orders; closing them one by one")
            mark_failure(span, exc)
            return None
        span.set_attribute(names.SWEEP_CLOSED, len(batch))
        record_batch_close_spans(
            batch, batch_span=span, actor=OrderEvent.Actor.SWEEP, begun_ns=begun_ns, committed_ns=time.time_ns()
        )
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
            outcome = close_order_traced(order_id, actor=OrderEvent.Actor.SWEEP)
        except Exception:
            logger.exception("safety net could not close order_id=%s", order_id)
            outcome = "failed"
            failures += 1
        if outcome == "closed":
            closed += 1
        else:
            passed_over.add(order_id)
    return closed, passed_over, failures
