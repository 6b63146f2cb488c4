"""The payment timeout by deadline bucket: one django-q2 ONCE schedule per BUCKET_SECONDS of deadlines.

One schedule (and one task) per order does not scale with django-q2: its scheduler spends ~5 ms per
due schedule (task signing, broker push, delete) and every task pays the cluster's per-task costs
(pusher, worker, result monitor, telemetry flush), ~60 closes/s on 2 cores at best
(docs/PERFORMANCE.md, "Payment timeout at scale"). Here the checkout makes sure a schedule exists for
the end of its deadline's bucket; that schedule's task closes every order past its deadline at that
moment, 500 per transaction (``close_overdue_batch``), each order in its own ``close_unpaid_order``
trace linked to its checkout. Pending schedules: ORDER_PAY_TIMEOUT ÷ BUCKET_SECONDS, whatever the
order rate. Latency: the deadline's bucket end (≤ BUCKET_SECONDS) plus the scheduler's 0–30 s.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from mall.telemetry import flush_telemetry, format_trace_id, names, new_root_context
from mall.telemetry.spans import mark_failure
from orders.models import OrderEvent
from orders.services import ClosedOrder, close_overdue_batch

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("mall.orders.timeouts")

BUCKET_SECONDS = 5
CLOSE_DUE_TASK = "orders.timeouts.close_due_orders"
BATCH_SIZE = 500
TIME_BUDGET = 45.0  # seconds; below the cluster's task timeout, the next bucket's task goes on
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


def ensure_close_scheduled(*, deadline: datetime) -> None:
    """Make sure a schedule closes the orders due by the end of ``deadline``'s bucket; in the caller's transaction.

    Usually nothing to do (this process saw the bucket's schedule committed); else django-q2's
    ``schedule()`` checks by name (a consistent read, never waits) and writes it. Two processes may both
    write one: the second task then finds nothing left to close.
    """
    from django_q.models import Schedule
    from django_q.tasks import schedule

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


class _CloseSpans:
    """Each order of a batch in its own trace ``close_unpaid_order`` (linked to its checkout, naming the task's
    trace), started once the batch is locked so that the order's ``closed`` event can name it; ended after
    the commit, or marked failed if the batch is rolled back (a retried batch starts new ones)."""

    def __init__(self, *, task_trace_id: str):
        self.task_trace_id = task_trace_id
        self.spans: dict[int, trace.Span] = {}

    def start(self, batch: list[ClosedOrder]) -> dict[int, str]:
        self.fail(RuntimeError("the batch was retried"))  # spans of an earlier, rolled back attempt
        begun_ns = time.time_ns()
        from orders.tasks import start_close_span

        for order in batch:
            self.spans[order.id] = start_close_span(
                order,
                context=new_root_context(),
                kind=SpanKind.CONSUMER,
                actor=OrderEvent.Actor.TIMEOUT,
                start_time=begun_ns,
                **{names.TIMEOUT_TASK_TRACE_ID: self.task_trace_id},
            )
        return {order_id: format_trace_id(span) for order_id, span in self.spans.items()}

    def end(self) -> None:
        for span in self.spans.values():
            span.end()
        self.spans.clear()

    def fail(self, exc: BaseException) -> None:
        for span in self.spans.values():
            mark_failure(span, exc)
        self.end()


def close_due_orders() -> int:
    """Task of a deadline bucket's schedule: close every order past its deadline; returns how many.

    Batches of BATCH_SIZE, one transaction each (orders a pay or cancel holds are passed over, never
    waited for), within a time budget. The task is a trace ``close_due_orders``; each order closed gets
    its own ``close_unpaid_order`` trace, which its ``closed`` event names. A batch that fails is handed
    to the safety-net sweep, which closes its orders one by one.
    """
    from orders.tasks import close_overdue_orders

    budget_ends = time.monotonic() + TIME_BUDGET
    closed = 0
    try:
        root = new_root_context()
        with tracer.start_as_current_span(names.CLOSE_DUE_ORDERS, context=root, kind=SpanKind.CONSUMER) as span:
            task_trace_id = format_trace_id(span)
            while time.monotonic() < budget_ends:
                close_spans = _CloseSpans(task_trace_id=task_trace_id)
                try:
                    batch = close_overdue_batch(
                        now=timezone.now(),
                        limit=BATCH_SIZE,
                        actor=OrderEvent.Actor.TIMEOUT,
                        trace_closes=close_spans.start,
                    )
                except Exception as exc:
                    close_spans.fail(exc)
                    logger.exception("could not close a batch of due orders; the safety net closes them one by one")
                    closed += close_overdue_orders()
                    break
                close_spans.end()
                closed += len(batch)
                if len(batch) < BATCH_SIZE:
                    break
            span.set_attribute(names.TIMEOUT_CLOSED, closed)
        return closed
    finally:
        flush_telemetry()  # task workers end with os._exit: nothing is flushed at exit
