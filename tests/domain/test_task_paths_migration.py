"""Migration orders/0006: schedules and queued tasks stored by earlier versions name the tasks of orders.tasks."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from orders.checkout import create_order
from orders.expiry import CLOSE_DUE_TASK, bucket_end, close_due_orders, schedule_name
from orders.models import Order
from tests.factories import ADDRESS, GoodsFactory, UserFactory, fill_cart

BEFORE = [("orders", "0005_schedule_next_run_index")]
AFTER = [("orders", "0006_task_paths_of_orders_tasks")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def place_order(*, due: datetime) -> Order:
    user = UserFactory()
    fill_cart(user, (GoodsFactory(stock_quantity=5), 1))
    order = create_order(user=user, **ADDRESS).order
    Order.objects.filter(pk=order.pk).update(expires_at=due)
    return order


@pytest.mark.django_db(transaction=True)
def test_stored_schedules_and_queued_tasks_name_the_new_tasks_and_the_orders_still_close():
    past = datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC)
    covered, uncovered = place_order(due=past), place_order(due=past + timedelta(seconds=60))
    Schedule.objects.all().delete()
    migrate(BEFORE)
    Schedule.objects.create(name="close-overdue-orders", func="orders.tasks.close_overdue_orders", schedule_type="I")
    bucket = Schedule.objects.create(
        name=schedule_name(bucket_end(past)), func="orders.timeouts.close_due_orders", schedule_type="O", next_run=past
    )
    for order in (covered, uncovered):
        Schedule.objects.create(
            func="orders.tasks.close_unpaid_order", args=repr((order.pk, "")), schedule_type="O", next_run=past
        )
    Schedule.objects.create(func="orders.tasks.close_unpaid_order", args=repr((10**9, "")), schedule_type="O")
    OrmQ.objects.create(
        key="default",
        payload=SignedPackage.dumps({"id": "q1", "func": "orders.timeouts.close_due_orders", "args": (), "kwargs": {}}),
        lock=None,
    )

    migrate(AFTER)

    schedules = {s.name: (s.func, s.args) for s in Schedule.objects.exclude(name="close-overdue-orders")}
    assert schedules == {
        bucket.name: (CLOSE_DUE_TASK, None),  # the stored path rewritten; the covered order's schedule deleted
        schedule_name(bucket_end(past + timedelta(seconds=60))): (CLOSE_DUE_TASK, None),
    }
    assert Schedule.objects.get(name="close-overdue-orders").func == "orders.tasks.close_overdue_orders"
    assert SignedPackage.loads(OrmQ.objects.get().payload)["func"] == CLOSE_DUE_TASK
    assert close_due_orders() == 2
    assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.CLOSED}
