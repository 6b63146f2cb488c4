"""The payment timeout, in one module: deadline-bucket schedules, closing one order, closing a due batch,
the safety-net sweep and its schedule.

One django-q2 ONCE schedule per BUCKET_SECONDS of deadlines, not one per order (django-q2's per-schedule
and per-task costs, docs/PERFORMANCE.md "Payment timeout at scale"). The checkout makes sure a schedule
exists for the end of its deadline's bucket; that schedule's task closes every order past its deadline at
that moment, BATCH_SIZE per transaction (``close_overdue_batch``), each order in its own
``close_unpaid_order`` trace linked to its checkout. Pending schedules: ORDER_PAY_TIMEOUT ÷ BUCKET_SECONDS,
whatever the order rate. Latency: the deadline's bucket end (≤ BUCKET_SECONDS) plus the scheduler's 0–30 s.

The safety net (``sweep_overdue_orders``, every minute) closes what a lost task (Redis broker, a killed
worker) or an outage left pending. django-q2 calls both through ``orders.tasks``, the dotted paths stored
schedules name.

The admin lets staff delete django-q2 schedules; without the safety net's (``close-overdue-orders``),
an order whose timeout was lost would stay pending and hold its stock for good. Every worker re-creates it
when it starts (``orders.signals``), and ``manage.py check --database default`` reports it missing (a
warning, so that ``migrate`` still runs; ``--fail-level WARNING`` for monitoring).

Migration orders/0005 widens ``django_q_schedule.id`` to BIGINT, but django_q's model still declares an
``AutoField``, and Django 5 answers a lookup of an integer beyond its field's range with an empty
result: past id 2^31, ``Schedule.objects.get(pk=…)`` finds nothing and saving a schedule fails, which
rolls the scheduler's whole pass back, every pass. ``mall.patches.use_64_bit_schedule_ids`` makes the ORM treat the
column as what it now is, at run time only (``makemigrations`` stays clean).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from django.core import checks
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule
from opentelemetry import trace
from opentelemetry.trace import SpanKind

import faults
from faults.errors import FaultInjected
from faults.injection import draw, record_hit
from faults.models import FaultRule
from faults.selectors import Rule, rule_for
from inventory.services import return_stock_of_orders
from mall.db import in_callers_transaction, retry_on_lock_conflict
from mall.telemetry import format_trace_id, new_root_context
from mall.telemetry.names import ORDER_NO
from mall.telemetry.spans import mark_failure
from orders import metrics, tracing
from orders.events import record_closed_events, record_event
from orders.models import ClosedOrder, Order, OrderEvent, OrderLine
from orders.selectors import current_status, overdue_order_ids, overdue_orders
from orders.services import end_pending_order
from orders.tracing import CloseTraces, link_to_checkout, start_close_span, task_span

logger = logging.getLogger(__name__)

BUCKET_SECONDS = 5
CLOSE_DUE_TASK = "orders.tasks.close_due_orders"
BATCH_SIZE = 500  # orders closed per transaction
TIME_BUDGET = 45.0  # seconds a task closes for; below the cluster's task timeout, the next task goes on
_SCHEDULE_PREFIX = "close-due-orders-"

_committed: dict[str, float] = {}  # schedule name → bucket end (epoch s): known committed, in this process
_committed_lock = threading.Lock()


def bucket_end(deadline: datetime) -> datetime:
    """Return the end of ``deadline``'s bucket (deadlines are rounded up to a multiple of BUCKET_SECONDS)."""
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


def close_due_orders() -> int:
    """Close every order past its deadline (a deadline bucket's task); return how many.

    Batches of BATCH_SIZE, one transaction each (orders a pay or cancel holds are passed over, never
    waited for), within a time budget. The task is a trace ``close_due_orders``; each order closed gets
    its own ``close_unpaid_order`` trace, which its ``closed`` event tracing. A batch that fails is handed
    to the safety-net sweep, which closes its orders one by one.
    """
    budget_ends = time.monotonic() + TIME_BUDGET
    closed = 0
    refused: set[int] = set()  # left pending by an injected close error: not taken again by this run
    with task_span(tracing.CLOSE_DUE_ORDERS) as span:
        close_traces = CloseTraces(task_trace_id=format_trace_id(span), actor=OrderEvent.Actor.TIMEOUT)
        while time.monotonic() < budget_ends:
            refused_before = len(refused)
            try:
                batch = close_overdue_batch(
                    now=timezone.now(),
                    limit=BATCH_SIZE,
                    exclude=refused,
                    actor=OrderEvent.Actor.TIMEOUT,
                    trace_closes=close_traces,
                    fault_refused=refused,
                )
            except Exception as exc:
                close_traces.fail(exc)
                logger.exception("could not close a batch of due orders; the safety net closes them one by one")
                closed += sweep_overdue_orders(actor=OrderEvent.Actor.TIMEOUT)  # the events name this path
                break
            close_traces.end()
            closed += len(batch)
            if len(batch) + len(refused) - refused_before < BATCH_SIZE:
                break
        span.set_attribute(tracing.TIMEOUT_CLOSED, closed)
    return closed


def close_order_traced(order_id: int, *, actor: str, traceparent: str = "") -> str:
    """Close one order (``close_order_if_overdue``) in its own trace ``close_unpaid_order``, linked to its checkout."""
    with task_span(tracing.CLOSE_UNPAID_ORDER, {tracing.ORDER_ACTOR: actor, tracing.ORDER_ID: order_id}) as span:
        with faults.inject(tracing.CLOSE_UNPAID_ORDER):  # an injected error: raised before any write
            order = Order.objects.filter(pk=order_id).first()
        if order is None:
            outcome = "skipped_missing"
        else:
            link_to_checkout(span, trace_id=order.trace_id, span_id=order.span_id, traceparent=traceparent)
            span.set_attribute(ORDER_NO, order.order_no)
            outcome = close_order_if_overdue(order=order, actor=actor)
        span.set_attribute(tracing.ORDER_OUTCOME, outcome)
        return outcome


def sweep_overdue_orders(batch_size: int = BATCH_SIZE, *, actor: str = OrderEvent.Actor.SWEEP) -> int:
    """Close the pending orders past their deadline whose timeout was lost (the safety net); return how many.

    The deadline buckets' tasks normally do this; the sweep covers lost tasks (Redis broker, killed
    workers) and outages. Works in batches of ``batch_size`` orders, one transaction and one trace
    (``close_overdue_orders``) each, within a time budget. A batch that fails is rolled back and its
    orders closed one by one: an order whose close fails is logged and left for the next sweep, so it
    cannot block the rest. ``actor`` names the path in the ``closed`` events: the sweep, or the deadline
    bucket's task whose own batch failed.
    """
    if not overdue_order_ids(now=timezone.now(), limit=1):
        return 0  # the usual minute: one untraced read, no trace
    budget_ends = time.monotonic() + TIME_BUDGET
    closed, failures = 0, 0
    passed_over: set[int] = set()  # failed in this sweep, or taken by pay/cancel meanwhile: not fetched again
    while time.monotonic() < budget_ends:
        passed_before = len(passed_over)
        batch = _close_batch_traced(limit=batch_size, exclude=passed_over, actor=actor)
        if batch is None:  # rolled back: its orders one by one, passing over any that cannot be closed
            one_by_one, passed, failed = _close_one_by_one(
                limit=batch_size, exclude=passed_over, budget_ends=budget_ends, actor=actor
            )
            closed += one_by_one
            failures += failed
            passed_over |= passed
            if not (one_by_one or passed):
                break  # nothing left to try
            continue
        closed += len(batch)
        if len(batch) + len(passed_over) - passed_before < batch_size:
            break  # none left (or the rest is held by a pay/cancel right now: the next sweep)
    if closed or failures:
        logger.info("safety net closed overdue orders count=%s failed=%s", closed, failures)
    return closed


def _close_batch_traced(*, limit: int, exclude: set[int], actor: str) -> list[ClosedOrder] | None:
    """Close one batch of the sweep in its own trace ``close_overdue_orders`` (its statements are children).

    Each order closed gets its own ``close_unpaid_order`` trace, as under the deadline buckets' task. Returns
    the orders closed, or None if the batch failed: rolled back, logged, its spans marked ERROR. Orders an
    injected close error left pending are added to ``exclude`` (passed over for the rest of the sweep).
    """
    with task_span(tracing.CLOSE_OVERDUE_ORDERS) as span:
        close_traces = CloseTraces(task_trace_id=format_trace_id(span), actor=actor)
        try:
            batch = close_overdue_batch(
                now=timezone.now(),
                limit=limit,
                exclude=exclude,
                actor=actor,
                trace_closes=close_traces,
                fault_refused=exclude,
            )
        except Exception as exc:
            close_traces.fail(exc)
            logger.exception("safety net could not close a batch of overdue orders; closing them one by one")
            mark_failure(span, exc)
            return None
        close_traces.end()
        span.set_attribute(tracing.SWEEP_CLOSED, len(batch))
        return batch


def _close_one_by_one(*, limit: int, exclude: set[int], budget_ends: float, actor: str) -> tuple[int, set[int], int]:
    """Close a failed batch's orders one by one (own transaction and trace each), until ``budget_ends``.

    Returns (closed, passed over, failures). An order that cannot be closed is logged, its span
    marked ERROR, and passed over, so it cannot block the others.
    """
    closed, passed_over, failures = 0, set(), 0
    for order_id in overdue_order_ids(now=timezone.now(), limit=limit, exclude=exclude):
        if time.monotonic() > budget_ends:
            break  # e.g. every close waits out a lock: the next sweep goes on
        try:
            outcome = close_order_traced(order_id, actor=actor)
        except Exception:
            logger.exception("safety net could not close order_id=%s", order_id)
            outcome = "failed"
            failures += 1
        if outcome == "closed":
            closed += 1
        else:
            passed_over.add(order_id)
    return closed, passed_over, failures


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
    with transaction.atomic(durable=True):
        closed = end_pending_order(order=order, status=Order.Status.CLOSED, now=now, due_by=now)
        if closed:
            record_event(order=order, kind=OrderEvent.Kind.CLOSED, at=now, actor=actor)
    if closed:
        metrics.orders_closed.add(1, {"reason": "timeout"})
        logger.info("order closed unpaid order_no=%s", order.order_no)
        return "closed"
    return _SKIPPED[current_status(order=order)]


@retry_on_lock_conflict
def close_overdue_batch(
    *,
    now: datetime,
    limit: int,
    exclude: Collection[int] = (),
    actor: str = OrderEvent.Actor.SWEEP,
    trace_closes: CloseTraces | None = None,
    fault_refused: set[int] | None = None,
) -> list[ClosedOrder]:
    """Close up to ``limit`` orders still pending past their deadline at ``now``, in ONE transaction.

    Seven statements and one commit whatever the batch size: lock the batch (oldest deadline first,
    index order_status_deadline; with SKIP LOCKED where the database has it, so orders a pay, cancel
    or per-order close holds right now are passed over, not waited for), mark exactly those orders
    closed, read their lines, and return their stock (one lock of the goods' stock rows, one relative
    update, one ledger insert: ``return_stock_of_orders``), and one insert of their ``closed`` events.
    Orders in ``exclude`` are not taken. The events name the current trace, or with ``trace_closes`` the
    trace it starts for each order (given the batch once it is locked: each order's own ``close_unpaid_order``).

    The fault rule of ``close_unpaid_order`` applies per order, as to a close of one order (drawn per order):
    an order an error hits is left out of the batch, pending, its stock untouched, in a trace of its own
    marked ERROR with the event ``mall.fault``, and its id added to ``fault_refused``; the rest still close
    (an injected error names its order, so the batch does not fall back one by one as on a real failure).
    A delay or a hold sleeps once, after the writes and before the commit (the spans start with the events'
    insert, so that a batch that fails starts none): every order of the batch shares its transaction and
    its row locks, so every close of the batch lasts it.

    Returns the orders closed, oldest deadline first (empty: nothing left to close). Any error rolls
    the whole batch back, nothing closed and no stock moved: the caller may close those orders one by
    one (``close_order_if_overdue``) to pass over a broken one. Deadlocks and lock waits are retried.
    """
    with transaction.atomic(durable=True):
        overdue = overdue_orders(now=now, exclude=exclude).select_for_update(
            skip_locked=connection.features.has_select_for_update_skip_locked
        )
        locked = [ClosedOrder(*row) for row in overdue.values_list("id", "order_no", "trace_id", "span_id")[:limit]]
        if not locked:
            return []
        drawn_ns = time.time_ns()
        hits = _draw_close_faults(locked)
        refused = [(order, hits[order.id]) for order in locked if _refuses(hits.get(order.id))]
        batch = [order for order in locked if not _refuses(hits.get(order.id))]
        if not batch:
            return _refuse_closes(refused, actor=actor, started_ns=drawn_ns, into=fault_refused)
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
        trace_ids = trace_closes.start(batch) if trace_closes is not None else None
        record_closed_events(order_ids=ids, at=now, actor=actor, trace_ids=trace_ids)
        _apply_close_faults(hits, spans=trace_closes.spans if trace_closes is not None else {})
    _refuse_closes(refused, actor=actor, started_ns=drawn_ns, into=fault_refused)
    metrics.orders_closed.add(len(batch), {"reason": "timeout"})
    metrics.stock_returned.add(units)
    logger.info("overdue orders closed unpaid count=%s units_returned=%s", len(batch), units)
    return batch


def _draw_close_faults(orders: list[ClosedOrder]) -> dict[int, Rule]:
    """The orders of a batch the close rule hits (drawn per order), by id; one look when no rule is set."""
    if rule_for(tracing.CLOSE_UNPAID_ORDER) is None:
        return {}
    return {order.id: rule for order in orders if (rule := draw(tracing.CLOSE_UNPAID_ORDER)) is not None}


def _refuses(rule: Rule | None) -> bool:
    return rule is not None and rule.kind == FaultRule.Kind.ERROR


def _apply_close_faults(hits: dict[int, Rule], *, spans) -> None:
    """A batch's delay and hold hits: the event on each hit order's close span, then one sleep, locks held."""
    waits = [rule.milliseconds for rule in hits.values() if not _refuses(rule)]
    for order_id, rule in hits.items():
        if not _refuses(rule):
            record_hit(rule, spans.get(order_id))
    if waits:
        time.sleep(max(waits) / 1000)


def _refuse_closes(
    refused: list[tuple[ClosedOrder, Rule]], *, actor: str, started_ns: int, into: set[int] | None
) -> list[ClosedOrder]:
    """Trace the orders an injected close error left out of a batch (after its commit); returns []."""
    task_trace_id = format_trace_id(trace.get_current_span())
    for order, rule in refused:
        span = start_close_span(
            order,
            context=new_root_context(),
            kind=SpanKind.CONSUMER,
            actor=actor,
            start_time=started_ns,
            **{tracing.ORDER_OUTCOME: "failed", tracing.TIMEOUT_TASK_TRACE_ID: task_trace_id},
        )
        record_hit(rule, span)
        mark_failure(span, FaultInjected(step=tracing.CLOSE_UNPAID_ORDER))
        span.end()
    if into is not None:
        into.update(order.id for order, _ in refused)
    if refused:
        logger.warning("injected close fault left %s overdue orders pending", len(refused))
    return []


# --- the safety net's schedule (its 64-bit ids: mall.patches.use_64_bit_schedule_ids)

SAFETY_NET_NAME = "close-overdue-orders"  # as created by migration 0002_safety_net_schedule
SAFETY_NET_FUNC = "orders.tasks.close_overdue_orders"


def ensure_safety_net_schedule() -> bool:
    """Create the every-minute sweep schedule if it is missing; True if it was created.

    Workers starting together may both create it (django-q2's name check is not a constraint):
    each then keeps the oldest row and deletes the others, so they converge on one.
    """
    if Schedule.objects.filter(name=SAFETY_NET_NAME).exists():
        return False
    # First run a minute from now: the one-off closes due meanwhile run first (the sweep is for lost ones).
    Schedule.objects.create(
        name=SAFETY_NET_NAME,
        func=SAFETY_NET_FUNC,
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=-1,
        next_run=timezone.now() + timedelta(minutes=1),
    )
    kept = Schedule.objects.filter(name=SAFETY_NET_NAME).order_by("id").values_list("id", flat=True).first()
    Schedule.objects.filter(name=SAFETY_NET_NAME).exclude(pk=kept).delete()
    logger.warning("the safety net schedule %r was missing: re-created", SAFETY_NET_NAME)
    return True


@checks.register(checks.Tags.database)
def check_safety_net_schedule(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Check that the sweep schedule exists (``manage.py check --database default``: only with a database)."""
    if not databases or "default" not in databases:
        return []
    try:
        missing = not Schedule.objects.filter(name=SAFETY_NET_NAME, func=SAFETY_NET_FUNC).exists()
    except DatabaseError:  # not migrated yet: migrate creates it
        return []
    if not missing:
        return []
    return [
        checks.Warning(
            f"The safety net schedule {SAFETY_NET_NAME!r} is missing: overdue orders whose timeout was lost "
            "stay pending and keep their stock.",
            hint="Start (or restart) a worker, `manage.py qcluster`: it re-creates the schedule.",
            id="orders.W001",
        )
    ]
