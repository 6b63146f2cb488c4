"""The payment timeout at scale: django_q_schedule indexed on next_run with a 64-bit id, and a scheduler
pass that neither scans every pending schedule nor waits behind a checkout still in flight."""

import threading
from datetime import timedelta
from pydoc import locate

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage
from opentelemetry.trace import SpanKind

from inventory.models import Stock, StockMove
from orders import expiry
from orders.checkout import create_order
from orders.errors import OrderNotPending
from orders.expiry import BUCKET_SECONDS, CLOSE_DUE_TASK, bucket_end, close_due_orders, schedule_name
from orders.invariants import check_invariants
from orders.models import Order
from orders.services import cancel_order, pay_order
from tests.factories import ADDRESS, GoodsFactory, UserFactory, fill_cart
from tests.support import run_concurrently, wait_until

CLOSE_TASK = "orders.tasks.close_unpaid_order"
NEXT_RUN_INDEX = "mall_schedule_next_run"  # migration orders/0005


def schedule_indexes() -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, "django_q_schedule")


@pytest.mark.django_db
def test_the_scheduler_finds_due_schedules_through_an_index_on_next_run():
    indexes = [c for c in schedule_indexes().values() if c["index"] and not c["primary_key"]]

    assert any(c["columns"] == ["next_run"] for c in indexes), indexes


@pytest.mark.django_db(transaction=True)  # the scheduler closes old connections: no test transaction around it
def test_schedules_with_ids_beyond_32_bits_are_run_by_the_scheduler_like_any_other():
    # One schedule per order: 2^31 ids are 25 days at 1,000 orders/s. The column holds bigger ids (BIGINT)
    # and the ORM looks them up (django_q's model declares a 32-bit AutoField).
    beyond = 2**40 + 7
    due = timezone.now() - timedelta(seconds=1)
    Schedule.objects.all().delete()
    Schedule.objects.create(id=beyond, func="math.floor", args="(1.5,)", schedule_type=Schedule.ONCE, next_run=due)
    Schedule.objects.create(
        id=beyond + 1, func="math.ceil", args="(1.5,)", schedule_type=Schedule.MINUTES, minutes=1, next_run=due
    )
    broker = get_broker()
    broker.purge_queue()

    scheduler(broker=broker)
    scheduler(broker=broker)  # the next pass: nothing is due any more

    assert list(Schedule.objects.values_list("pk", flat=True)) == [beyond + 1]  # the ONCE schedule deleted
    assert Schedule.objects.get(pk=beyond + 1).next_run > timezone.now()  # the repeating one saved, moved on
    assert broker.queue_size() == 2
    queued = [SignedPackage.loads(payload)["func"] for _ in range(2) for _, payload in broker.dequeue() or []]
    assert sorted(queued) == ["math.ceil", "math.floor"]
    assert Schedule.objects.create(func=CLOSE_TASK, schedule_type=Schedule.ONCE).pk == beyond + 2


# --- no stall behind an in-flight checkout (MariaDB: row locks; SQLite has one writer) -------------


def place(goods, nums: int) -> Order:
    buyer = UserFactory()
    fill_cart(buyer, (goods, nums))
    return create_order(user=buyer, **ADDRESS).order


def bucket_schedule_of(order: Order) -> str:
    return schedule_name(bucket_end(Order.objects.get(pk=order.pk).expires_at))


def transactions_waiting_for_a_lock() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(  # of this database only: the server is shared
            "SELECT t.trx_id FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p"
            " ON p.ID = t.trx_mysql_thread_id WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()"
        )
        return [row[0] for row in cursor.fetchall()]


def run_queued_tasks(broker) -> list[tuple[str, object]]:
    """What a cluster worker does with the broker's queued tasks: run each, then acknowledge it."""
    done = []
    for task_id, payload in broker.dequeue() or []:
        task = SignedPackage.loads(payload)
        done.append((task["func"], locate(task["func"])(*task["args"], **task["kwargs"])))
        broker.acknowledge(task_id)
    return done


@pytest.fixture(params=["range on next_run", "full scan"])
def scheduler_plan(request):
    """How MariaDB reads the due schedules: through the index on next_run, or (as it sometimes plans on a
    small table) by a full scan, which locks every row it reads, a future one included."""
    if connection.vendor != "mysql":
        pytest.skip("row locks: MariaDB only (SQLite has a single writer)")
    if request.param == "full scan":
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE django_q_schedule ALTER INDEX {NEXT_RUN_INDEX} IGNORED")
        request.addfinalizer(restore_next_run_index)
    return request.param


def restore_next_run_index():
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE django_q_schedule ALTER INDEX {NEXT_RUN_INDEX} NOT IGNORED")


@pytest.mark.django_db(transaction=True)
def test_a_scheduler_pass_and_the_due_closes_go_on_while_a_checkout_waits_for_a_hot_items_stock(
    settings, scheduler_plan
):
    settings.CHECKOUT_THROTTLE_RATE = None
    tea, hot = GoodsFactory(stock_quantity=10), GoodsFactory(stock_quantity=10)
    # An order whose deadline passed: its bucket's schedule is due.
    settings.ORDER_PAY_TIMEOUT = 60
    due = place(tea, 3)
    Order.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    Schedule.objects.filter(func=CLOSE_DUE_TASK).update(next_run=timezone.now() - timedelta(seconds=1))
    # The shop's other pending orders: their schedules lie between now and the in-flight checkout's. The
    # pass locks the due range and reads the first schedule after it (the next pending order's, committed).
    settings.ORDER_PAY_TIMEOUT = 1800
    earlier = place(tea, 1)
    # The checkout in flight is the first of its deadline bucket: it will write the bucket's schedule, last.
    settings.ORDER_PAY_TIMEOUT = 3600
    buyer = UserFactory()
    fill_cart(buyer, (hot, 1))

    stock_locked, release = threading.Event(), threading.Event()
    checkout_result = {}

    def hold_the_hot_stock_row():  # e.g. a staff stock edit or a slow checkout of the same goods
        try:
            with transaction.atomic():
                Stock.objects.select_for_update().get(goods=hot)
                stock_locked.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    def checkout():  # waits for the hot stock row before it writes its (future) schedule row
        try:
            with connection.cursor() as cursor:
                # Its wait outlasts the pass's (10 s) even on a slow machine: a pass that waited for this
                # checkout's schedule row would time out and fail the test, the checkout would not.
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 50")
            checkout_result["order"] = create_order(user=buyer, **ADDRESS).order
        except Exception as exc:  # reported by the assertions below
            checkout_result["error"] = exc
        finally:
            connections.close_all()

    holder, buyer_thread = threading.Thread(target=hold_the_hot_stock_row), threading.Thread(target=checkout)
    holder.start()
    try:
        assert stock_locked.wait(timeout=30)
        buyer_thread.start()
        (checkout_transaction,) = wait_until(transactions_waiting_for_a_lock, timeout=8, what="the checkout to wait")

        broker = get_broker()
        scheduler(broker=broker)  # django-q2's pass
        due_schedules_left = list(Schedule.objects.filter(func=CLOSE_DUE_TASK, next_run__lt=timezone.now()))
        done = run_queued_tasks(broker)

        # All of this happened while the checkout still waited in the same transaction. (Had the pass waited
        # for it, e.g. for a schedule row it wrote before its wait, the pass's own 10 s lock wait would fail.)
        assert buyer_thread.is_alive() and transactions_waiting_for_a_lock() == [checkout_transaction]
        assert due_schedules_left == []  # the pass took the due schedule (it did not wait for the checkout)
        assert done == [(CLOSE_DUE_TASK, 1)]  # the one order due
        assert Order.objects.get(pk=due.pk).status == Order.Status.CLOSED
        assert Stock.objects.get(goods=tea).quantity == 9  # the earlier order's unit is still sold
        assert StockMove.objects.filter(order_no=due.order_no, kind=StockMove.Kind.RETURN).count() == 1
    finally:
        release.set()
        holder.join(timeout=30)
        buyer_thread.join(timeout=30)

    # The checkout then went through, with its own timeout still scheduled for later.
    assert "error" not in checkout_result, checkout_result
    placed = checkout_result["order"]
    assert Order.objects.get(pk=placed.pk).status == Order.Status.PENDING
    pending = Schedule.objects.filter(func=CLOSE_DUE_TASK)
    assert sorted(s.name for s in pending) == sorted(bucket_schedule_of(order) for order in [earlier, placed])
    assert all(s.next_run > timezone.now() for s in pending)


# --- one schedule per deadline bucket, one task closing every due order --------------------------


def closes_in(spans) -> list:
    return [s for s in spans.get_finished_spans() if s.name == "close_unpaid_order"]


@pytest.mark.django_db(transaction=True)  # the checkout remembers a bucket once its transaction committed
def test_checkouts_with_deadlines_in_one_bucket_share_its_schedule():
    tea = GoodsFactory(stock_quantity=100)
    orders = [place(tea, 1) for _ in range(6)]
    with CaptureQueriesContext(connection) as captured:
        later = place(tea, 1)

    schedules = {s.name: s for s in Schedule.objects.filter(func=CLOSE_DUE_TASK)}
    assert set(schedules) == {bucket_schedule_of(order) for order in [*orders, later]}  # one per bucket, no more
    for order in [*orders, later]:  # every deadline covered, at most a bucket late
        next_run = schedules[bucket_schedule_of(order)].next_run
        assert order.expires_at <= next_run < order.expires_at + timedelta(seconds=BUCKET_SECONDS)
    if bucket_schedule_of(later) == bucket_schedule_of(orders[-1]):
        assert not [q for q in captured if "django_q_schedule" in q["sql"]]  # known committed: no statement


@pytest.mark.django_db
def test_the_buckets_task_closes_every_due_order_once_each_in_its_own_trace_linked_to_its_checkout(spans):
    tea = GoodsFactory(stock_quantity=10)
    due = [place(tea, 2) for _ in range(3)]
    paid, not_due = place(tea, 1), place(tea, 1)
    pay_order(order=paid)
    Order.objects.filter(pk__in=[o.pk for o in [*due, paid]]).update(expires_at=timezone.now() - timedelta(seconds=1))
    checkouts = {
        s.attributes["mall.order.no"]: s.context for s in spans.get_finished_spans() if s.name == "create_order"
    }
    spans.clear()

    assert close_due_orders() == 3
    assert close_due_orders() == 0  # run again (a duplicate bucket schedule, a re-delivery): nothing more

    assert [Order.objects.get(pk=o.pk).status for o in due] == [Order.Status.CLOSED] * 3
    assert Order.objects.get(pk=paid.pk).status == Order.Status.PAID
    assert Order.objects.get(pk=not_due.pk).status == Order.Status.PENDING
    assert Stock.objects.get(goods=tea).quantity == 10 - 2  # 6 units back once; paid and not due keep theirs
    assert StockMove.objects.filter(kind=StockMove.Kind.RETURN).count() == 3
    closes = closes_in(spans)
    first_run, _ = [s for s in spans.get_finished_spans() if s.name == "close_due_orders"]
    assert sorted(s.attributes["mall.order.no"] for s in closes) == sorted(o.order_no for o in due)
    for close in closes:
        checkout = checkouts[close.attributes["mall.order.no"]]
        assert close.parent is None and close.kind is SpanKind.CONSUMER
        assert [(link.context.trace_id, link.context.span_id) for link in close.links] == [
            (checkout.trace_id, checkout.span_id)
        ]
        assert close.attributes["mall.order.outcome"] == "closed"
        assert close.attributes["mall.timeout.task_trace_id"] == format(first_run.context.trace_id, "032x")
    traces = {s.context.trace_id for s in closes} | {first_run.context.trace_id}
    assert len(traces | {c.trace_id for c in checkouts.values()}) == 3 + 1 + 5  # each close its own trace


@pytest.mark.django_db
def test_the_buckets_task_works_through_more_due_orders_than_one_batch(monkeypatch):
    monkeypatch.setattr(expiry, "BATCH_SIZE", 2)
    tea = GoodsFactory(stock_quantity=10)
    due = [place(tea, 1) for _ in range(5)]
    Order.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert close_due_orders() == 5
    assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.CLOSED}
    assert Stock.objects.get(goods=tea).quantity == 10
    assert len(due) == StockMove.objects.filter(kind=StockMove.Kind.RETURN).count()


@pytest.mark.django_db(transaction=True)
def test_the_buckets_task_racing_itself_pay_and_cancel_ends_each_order_once():
    tea = GoodsFactory(stock_quantity=100)
    orders = [place(tea, 1) for _ in range(30)]
    Order.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    rivals = [("close", None)] * 3 + [("cancel", o) for o in orders[::3]]

    def act(rival):
        kind, order = rival
        if kind == "close":
            return close_due_orders()
        try:
            cancel_order(order=order)
            return "cancelled"
        except OrderNotPending:
            return "refused"

    results = run_concurrently(act, rivals)

    closed = sum(r for r in results if isinstance(r, int))
    cancelled = results.count("cancelled")
    assert closed + cancelled == 30
    assert Order.objects.filter(status=Order.Status.PENDING).count() == 0
    assert StockMove.objects.filter(kind=StockMove.Kind.RETURN).count() == 30  # each order's stock back once
    assert Stock.objects.get(goods=tea).quantity == 100
    assert check_invariants() == []


@pytest.mark.django_db
def test_a_failed_batch_of_the_buckets_task_is_closed_one_by_one_passing_over_the_broken_order(spans):
    tea = GoodsFactory(stock_quantity=10)
    broken, *healthy = [place(tea, 1) for _ in range(3)]
    Order.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    # A stray return move for one order: the ledger refuses a second one, so its close fails.
    StockMove.objects.create(goods=tea, order_no=broken.order_no, kind=StockMove.Kind.RETURN, quantity=1)

    assert close_due_orders() == 2

    assert Order.objects.get(pk=broken.pk).status == Order.Status.PENDING  # left for the next sweep
    assert [Order.objects.get(pk=o.pk).status for o in healthy] == [Order.Status.CLOSED] * 2
    assert Stock.objects.get(goods=tea).quantity == 10 - 1  # the batch's rollback returned nothing twice
    closes = {
        s.attributes["mall.order.no"]: s for s in closes_in(spans) if s.attributes.get("mall.order.outcome") == "closed"
    }
    assert set(closes) == {o.order_no for o in healthy}
