"""Payment timeout: the checkout schedules it, the django-q2 task closes an unpaid order once, traced.

The task functions run here in-process, called with the arguments django-q2 stored in the
schedule row (as the worker would); tests/e2e/test_timeout_e2e.py runs them in a real qcluster.
"""

import threading
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from inventory.errors import InsufficientStock
from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.errors import CheckoutFaultInjected, OrderNotPending
from orders.expiry import BUCKET_SECONDS, CLOSE_DUE_TASK, close_overdue_batch
from orders.invariants import check_invariants
from orders.models import Order
from orders.services import cancel_order, pay_order
from orders.tasks import close_due_orders, close_overdue_orders, close_unpaid_order
from tests.factories import fill_cart

CLOSE_TASK = "orders.tasks.close_unpaid_order"  # one schedule per order (schedules stored before buckets)
TIMEOUT_TASKS = [CLOSE_TASK, CLOSE_DUE_TASK]


# --- the shop's side of a timeout -------------------------------------------------------------


@pytest.fixture
def tea(goods_in_stock):
    return goods_in_stock(name="Tea", price="3.35", stock=10)


@pytest.fixture
def cup(goods_in_stock):
    return goods_in_stock(name="Cup", price="0.10", stock=10)


@pytest.fixture
def place_order(user, address):
    """Check out ``(goods, nums)`` lines for the user through the checkout service."""

    def place(*lines) -> Order:
        fill_cart(user, *lines)
        return create_order(user=user, **address).order

    return place


def stock_of(goods) -> int:
    return Stock.objects.get(goods=goods).quantity


def returns_of(order: Order) -> list[tuple[int, int]]:
    """The order's return moves in the stock ledger: (goods id, units)."""
    moves = StockMove.objects.filter(order_no=order.order_no, kind=StockMove.Kind.RETURN)
    return sorted(moves.values_list("goods_id", "quantity"))


def status_of(order: Order) -> str:
    return Order.objects.values_list("status", flat=True).get(pk=order.pk)


def make_overdue(order: Order) -> None:
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def timeout_schedules() -> list[Schedule]:
    return list(Schedule.objects.filter(func__in=TIMEOUT_TASKS))


def run_timeout(order: Order) -> str:
    """Run the per-order timeout task, as a schedule stored before deadline buckets does
    (tests/concurrency/test_timeout_scale.py runs the bucket's task)."""
    return close_unpaid_order(order.pk, "")


def span_context_of(traceparent: str) -> trace.SpanContext:
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    return trace.get_current_span(context).get_span_context()


def finished(spans, name: str) -> list:
    return [s for s in spans.get_finished_spans() if s.name == name]


# --- checkout schedules the timeout -----------------------------------------------------------


def test_checkout_schedules_the_close_of_its_deadline_bucket_in_its_transaction(place_order, tea, spans):
    order = place_order((tea, 2))

    (schedule,) = timeout_schedules()
    order.refresh_from_db()
    assert schedule.func == CLOSE_DUE_TASK
    assert schedule.schedule_type == Schedule.ONCE
    assert schedule.repeats == -1  # django-q2 deletes it once the task is queued
    assert order.expires_at <= schedule.next_run < order.expires_at + timedelta(seconds=BUCKET_SECONDS)
    (create,) = finished(spans, "create_order")
    # The schedule row is written by the schedule_timeout step, inside create_order's transaction.
    (step,) = finished(spans, "schedule_timeout")
    assert step.parent.span_id == create.context.span_id
    assert any(
        s.name == "INSERT" and s.parent.span_id == step.context.span_id
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CLIENT
    )


def test_checkout_refused_for_stock_schedules_no_timeout(place_order, goods_in_stock):
    scarce = goods_in_stock(stock=1)

    with pytest.raises(InsufficientStock):
        place_order((scarce, 2))

    assert timeout_schedules() == []
    assert not Order.objects.exists()


def test_checkout_failing_after_scheduling_rolls_the_schedule_back(place_order, tea, settings):
    settings.CHECKOUT_FAIL_STEP = "schedule_timeout"  # fails after the schedule row was written

    with pytest.raises(CheckoutFaultInjected):
        place_order((tea, 2))

    assert timeout_schedules() == []
    assert not Order.objects.exists()
    assert stock_of(tea) == 10


# --- the task closes an unpaid order once -----------------------------------------------------


def test_timeout_after_the_deadline_closes_the_order_and_returns_its_stock(place_order, tea, cup):
    order = place_order((tea, 3), (cup, 7))
    make_overdue(order)

    outcome = run_timeout(order)

    assert outcome == "closed"
    assert status_of(order) == Order.Status.CLOSED
    assert (stock_of(tea), stock_of(cup)) == (10, 10)
    assert returns_of(order) == sorted([(tea.pk, 3), (cup.pk, 7)])  # one return move per line


def test_running_the_timeout_twice_returns_the_stock_once(place_order, tea, cup):
    order = place_order((tea, 3), (cup, 7))
    make_overdue(order)

    outcomes = [run_timeout(order), run_timeout(order)]

    assert outcomes == ["closed", "skipped_closed"]
    assert (stock_of(tea), stock_of(cup)) == (10, 10)
    assert returns_of(order) == sorted([(tea.pk, 3), (cup.pk, 7)])


def _not_due(order):
    pass  # the deadline is ORDER_PAY_TIMEOUT (30 minutes by default) away


def _paid_then_overdue(order):
    pay_order(order=order)
    make_overdue(order)


def _cancelled_then_overdue(order):
    cancel_order(order=order)
    make_overdue(order)


@pytest.mark.parametrize(
    ("before_the_task", "outcome", "status", "returned"),
    [
        (_not_due, "skipped_not_due", Order.Status.PENDING, []),
        (_paid_then_overdue, "skipped_paid", Order.Status.PAID, []),
        (_cancelled_then_overdue, "skipped_cancelled", Order.Status.CANCELLED, [3]),  # by the cancel, once
    ],
    ids=["before_the_deadline", "paid", "cancelled"],
)
def test_timeout_leaves_an_order_alone_unless_it_is_unpaid_past_its_deadline(
    place_order, tea, spans, before_the_task, outcome, status, returned
):
    order = place_order((tea, 3))
    before_the_task(order)
    stock_before = stock_of(tea)
    spans.clear()

    assert run_timeout(order) == outcome

    assert status_of(order) == status
    assert stock_of(tea) == stock_before
    assert [units for _, units in returns_of(order)] == returned
    (close,) = finished(spans, "close_unpaid_order")
    assert close.attributes["mall.order.outcome"] == outcome


def test_close_span_is_a_new_trace_linked_to_the_checkout(place_order, tea, spans):
    order = place_order((tea, 2))
    (create,) = finished(spans, "create_order")
    make_overdue(order)
    spans.clear()

    run_timeout(order)

    (close,) = finished(spans, "close_unpaid_order")
    assert close.parent is None
    assert close.context.trace_id != create.context.trace_id
    assert close.kind is SpanKind.CONSUMER
    assert [(link.context.trace_id, link.context.span_id) for link in close.links] == [
        (create.context.trace_id, create.context.span_id)
    ]
    assert close.attributes["mall.order.no"] == order.order_no
    assert close.attributes["mall.order.outcome"] == "closed"
    statements = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert {"UPDATE", "INSERT"} <= {s.name for s in statements}
    assert all(s.context.trace_id == close.context.trace_id and s.parent is not None for s in statements)


# --- races: exactly one transition wins, stock is conserved ----------------------------------


def race(*actions):
    """Run the actions in threads released together; each one's result or exception."""
    start = threading.Barrier(len(actions))
    results: list = [None] * len(actions)

    def run(index, action):
        try:
            start.wait(timeout=10)
            results[index] = action()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=run, args=(i, action)) for i, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def _pay(order_id):
    try:
        pay_order(order=Order.objects.get(pk=order_id))
        return "paid"
    except OrderNotPending:
        return "lost"


def _cancel(order_id):
    try:
        cancel_order(order=Order.objects.get(pk=order_id))
        return "cancelled"
    except OrderNotPending:
        return "lost"


def _close(order_id):
    return close_unpaid_order(order_id)


RIVALS = {
    # rival: (its action, what it reports when it wins / loses, the close's outcome when it loses)
    "pay": (_pay, "paid", "lost", "skipped_paid"),
    "cancel": (_cancel, "cancelled", "lost", "skipped_cancelled"),
    "close": (_close, "closed", "skipped_closed", "skipped_closed"),
}
ROUNDS = 6


@pytest.mark.parametrize("rival", list(RIVALS))
def test_the_close_racing_pay_cancel_or_itself_has_exactly_one_winner(transactional_db, place_order, tea, rival):
    rival_action, rival_won, rival_lost, close_lost = RIVALS[rival]
    orders = [place_order((tea, 1)) for _ in range(ROUNDS)]

    for order in orders:
        make_overdue(order)
        close_result, rival_result = race(partial(_close, order.pk), partial(rival_action, order.pk))

        assert (close_result, rival_result) in {("closed", rival_lost), (close_lost, rival_won)}
        expected_status = Order.Status.CLOSED if close_result == "closed" else rival_won
        assert status_of(order) == expected_status
        assert len(returns_of(order)) == (0 if expected_status == Order.Status.PAID else 1)

    paid = sum(status_of(order) == Order.Status.PAID for order in orders)
    assert stock_of(tea) == 10 - paid  # every unit is either sold to a paid order or back in stock


# --- the safety net ---------------------------------------------------------------------------


def test_safety_net_closes_overdue_orders_whose_timeout_was_lost(place_order, tea):
    lost = [place_order((tea, 1)) for _ in range(3)]
    paid, not_due = place_order((tea, 1)), place_order((tea, 1))
    pay_order(order=paid)
    for order in [*lost, paid]:
        make_overdue(order)
    Schedule.objects.filter(func__in=TIMEOUT_TASKS).delete()  # the one-off timeouts never ran

    closed = close_overdue_orders(batch_size=2)  # more overdue orders than one batch

    assert closed == 3
    assert [status_of(order) for order in lost] == [Order.Status.CLOSED] * 3
    assert (status_of(paid), status_of(not_due)) == (Order.Status.PAID, Order.Status.PENDING)
    assert stock_of(tea) == 10 - 2  # the paid and the not-yet-due order keep their units
    assert all(returns_of(order) == [(tea.pk, 1)] for order in lost)


def test_safety_net_passes_over_an_order_it_cannot_close(place_order, tea, spans):
    broken, healthy = place_order((tea, 1)), place_order((tea, 1))
    for order in (broken, healthy):
        make_overdue(order)
    Order.objects.filter(pk=broken.pk).update(expires_at=timezone.now() - timedelta(hours=1))  # swept first
    # A stray return move for the broken order: the ledger refuses a second one, so its close fails.
    StockMove.objects.create(goods=tea, order_no=broken.order_no, kind=StockMove.Kind.RETURN, quantity=1)
    spans.clear()

    closed = close_overdue_orders(batch_size=1)

    assert closed == 1
    assert (status_of(broken), status_of(healthy)) == (Order.Status.PENDING, Order.Status.CLOSED)
    failed = [s for s in finished(spans, "close_unpaid_order") if s.attributes["mall.order.no"] == broken.order_no]
    assert [s.status.status_code for s in failed] == [StatusCode.ERROR]  # tried once, then passed over


def _broken(order: Order) -> None:
    """A stray return move for the order: the ledger refuses a second one, so its close fails."""
    goods_id = order.lines.values_list("goods_id", flat=True).first()
    StockMove.objects.create(goods_id=goods_id, order_no=order.order_no, kind=StockMove.Kind.RETURN, quantity=1)


def test_safety_net_closes_the_rest_of_a_failed_batch_one_by_one(place_order, tea, spans):
    broken, *healthy = [place_order((tea, 1)) for _ in range(3)]
    for order in (broken, *healthy):
        make_overdue(order)
    _broken(broken)
    spans.clear()

    closed = close_overdue_orders(batch_size=10)  # all three in one batch: it fails, rolled back whole

    assert closed == 2
    assert status_of(broken) == Order.Status.PENDING
    assert [status_of(order) for order in healthy] == [Order.Status.CLOSED] * 2
    assert stock_of(tea) == 10 - 1  # the broken order keeps its unit; the batch's rollback returned nothing twice
    assert all(returns_of(order) == [(tea.pk, 1)] for order in healthy)
    failed_batch, *_ = finished(spans, "close_overdue_orders")
    assert failed_batch.status.status_code == StatusCode.ERROR
    assert [event.name for event in failed_batch.events] == ["exception"]
    closes = {s.attributes["mall.order.no"]: s for s in finished(spans, "close_unpaid_order")}
    assert closes[broken.order_no].status.status_code == StatusCode.ERROR
    assert [closes[order.order_no].attributes["mall.order.outcome"] for order in healthy] == ["closed"] * 2


# --- the safety net in batches: a constant number of statements, one trace per batch -----------


@pytest.fixture
def pantry(goods_in_stock):
    """Tea and cups, 200 of each: enough for the 61 orders of a batch test."""
    return goods_in_stock(name="Tea", price="3.35", stock=200), goods_in_stock(name="Cup", price="0.10", stock=200)


@pytest.fixture
def overdue_orders(place_order, pantry):
    """``count`` overdue two-line orders (1 tea, 2 cups each) whose timeouts were lost."""
    tea, cup = pantry

    def make(count: int) -> list[Order]:
        orders = [place_order((tea, 1), (cup, 2)) for _ in range(count)]
        Order.objects.filter(pk__in=[order.pk for order in orders]).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        Schedule.objects.filter(func__in=TIMEOUT_TASKS).delete()
        return orders

    return make


def test_a_batch_runs_the_same_statements_for_3_and_for_30_orders(overdue_orders, pantry):
    tea, cup = pantry
    statements = {}
    for size in (3, 30):
        orders = overdue_orders(2 * size + 1)  # two full batches and one of a single order

        with CaptureQueriesContext(connection) as queries:
            closed = close_overdue_orders(batch_size=size)

        assert closed == 2 * size + 1
        assert {status_of(order) for order in orders} == {Order.Status.CLOSED}
        statements[size] = len(queries)
    assert statements[3] == statements[30]
    assert statements[3] <= 1 + 3 * 9  # the "anything due?" read, then 7 statements + begin/commit per batch
    assert (stock_of(tea), stock_of(cup)) == (200, 200)


def test_each_order_of_a_batch_returns_its_lines_once(overdue_orders, pantry):
    tea, cup = pantry
    orders = overdue_orders(5)
    assert (stock_of(tea), stock_of(cup)) == (195, 190)

    assert close_overdue_orders(batch_size=2) == 5
    assert close_overdue_orders(batch_size=2) == 0  # again: nothing more

    assert (stock_of(tea), stock_of(cup)) == (200, 200)
    assert all(returns_of(order) == sorted([(tea.pk, 1), (cup.pk, 2)]) for order in orders)
    assert StockMove.objects.filter(kind=StockMove.Kind.RETURN).count() == 5 * 2
    assert check_invariants() == []


def test_a_batch_is_one_trace_and_each_order_closed_its_own_trace_linked_to_its_checkout(overdue_orders, spans):
    orders = overdue_orders(5)
    checkout_of = {s.attributes["mall.order.no"]: s for s in finished(spans, "create_order")}
    spans.clear()

    close_overdue_orders(batch_size=2)

    batches = finished(spans, "close_overdue_orders")
    assert [b.attributes["mall.sweep.closed"] for b in batches] == [2, 2, 1]
    assert all(b.parent is None and b.kind is SpanKind.CONSUMER for b in batches)
    assert len({b.context.trace_id for b in batches}) == 3  # a new trace per batch
    batch_traces = {f"{b.context.trace_id:032x}" for b in batches}
    closes = finished(spans, "close_unpaid_order")
    assert sorted(c.attributes["mall.order.no"] for c in closes) == sorted(order.order_no for order in orders)
    for close in closes:  # the shape of the deadline buckets' task: a root per order, naming the batch's trace
        assert close.parent is None and close.kind is SpanKind.CONSUMER
        assert close.attributes["mall.timeout.task_trace_id"] in batch_traces
        checkout = checkout_of[close.attributes["mall.order.no"]]
        assert [(link.context.trace_id, link.context.span_id) for link in close.links] == [
            (checkout.context.trace_id, checkout.context.span_id)
        ]
        assert close.attributes["mall.order.outcome"] == "closed"
        assert close.attributes["mall.order.actor"] == "sweep"
        assert close.attributes["mall.order.id"] == Order.objects.get(order_no=close.attributes["mall.order.no"]).pk


def test_orders_of_a_failed_bucket_batch_are_closed_one_by_one_and_their_events_name_the_timeout(
    place_order, tea, spans
):
    broken, *healthy = [place_order((tea, 1)) for _ in range(3)]
    for order in (broken, *healthy):
        make_overdue(order)
    _broken(broken)

    assert close_due_orders() == 2  # the bucket's batch fails; its fallback closes the others one by one

    assert [status_of(order) for order in healthy] == [Order.Status.CLOSED] * 2
    for order in healthy:
        assert list(order.events.filter(kind="closed").values_list("actor", flat=True)) == ["timeout"]


def test_nothing_overdue_makes_no_trace(place_order, tea, spans):
    place_order((tea, 1))  # not due for ORDER_PAY_TIMEOUT
    spans.clear()

    assert close_overdue_orders() == 0

    assert spans.get_finished_spans() == ()


# --- the batched sweep racing pay, cancel and the per-order close ----------------------------


SWEEP_RACE_ORDERS = 8


def _sweep_at(now) -> list[int]:
    """The sweep's batches (3 orders each) with a clock at ``now``; the ids of the orders it closed."""
    closed: list[int] = []
    while batch := close_overdue_batch(now=now, limit=3):
        closed += [order.id for order in batch]
    return closed


def test_the_batched_sweep_racing_pay_and_cancel_has_exactly_one_winner_per_order(
    transactional_db, place_order, goods_in_stock
):
    """Not yet due for the shop (pay is allowed) but past due for the sweep's clock: both are eligible."""
    tea = goods_in_stock(name="Tea", stock=10)
    orders = [place_order((tea, 1)) for _ in range(SWEEP_RACE_ORDERS)]
    sweep_clock = max(order.expires_at for order in orders) + timedelta(seconds=1)
    rivals = [(_pay if i % 2 == 0 else _cancel, "paid" if i % 2 == 0 else "cancelled") for i in range(len(orders))]

    swept, *rival_results = race(
        partial(_sweep_at, sweep_clock),
        *[partial(action, order.pk) for (action, _), order in zip(rivals, orders, strict=True)],
    )

    assert not isinstance(swept, Exception), swept
    for order, (_, rival_won), rival_result in zip(orders, rivals, rival_results, strict=True):
        if order.pk in swept:
            assert (status_of(order), rival_result) == (Order.Status.CLOSED, "lost")
        else:
            assert (status_of(order), rival_result) == (rival_won, rival_won)
        assert len(returns_of(order)) == (0 if status_of(order) == Order.Status.PAID else 1)
    assert len(swept) == len(set(swept))
    paid = sum(status_of(order) == Order.Status.PAID for order in orders)
    assert stock_of(tea) == 10 - paid
    assert check_invariants() == []


def test_the_safety_net_racing_cancels_and_per_order_closes_has_exactly_one_winner_per_order(
    transactional_db, place_order, goods_in_stock
):
    tea = goods_in_stock(name="Tea", stock=10)
    orders = [place_order((tea, 1)) for _ in range(SWEEP_RACE_ORDERS)]
    for order in orders:
        make_overdue(order)
    rivals = [_cancel if i % 2 == 0 else _close for i in range(len(orders))]

    swept, *rival_results = race(
        partial(close_overdue_orders, batch_size=3),
        *[partial(action, order.pk) for action, order in zip(rivals, orders, strict=True)],
    )

    assert not isinstance(swept, Exception), swept
    won_by_rivals = [result for result in rival_results if result in {"cancelled", "closed"}]
    assert swept + len(won_by_rivals) == len(orders)  # every order ended once, by the sweep or by its rival
    for order, rival_result in zip(orders, rival_results, strict=True):
        expected = {"cancelled": Order.Status.CANCELLED, "closed": Order.Status.CLOSED}.get(rival_result)
        assert status_of(order) == (expected or Order.Status.CLOSED)  # lost: the sweep closed it
        assert len(returns_of(order)) == 1
    assert stock_of(tea) == 10
    assert check_invariants() == []
