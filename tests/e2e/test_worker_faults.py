"""The task worker killed (SIGKILL, as a host dies) while closing overdue orders, then restarted."""

import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.invariants import check_invariants
from orders.models import Order
from tests.factories import GoodsFactory, UserFactory, fill_cart
from tests.support import qcluster, read_log, shop_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ORDERS = 400
FIRST_WAKE = 90  # django-q2's scheduler first wakes ~30 s after the cluster starts
RECOVERY = 180  # remaining queue at once; the every-minute safety net for tasks lost in flight


def test_a_worker_killed_mid_sweep_closes_every_overdue_order_exactly_once_after_restart(tmp_path):
    goods = GoodsFactory(stock_quantity=ORDERS)
    buyer = UserFactory()
    for _ in range(ORDERS):
        fill_cart(buyer, (goods, 1))
        create_order(user=buyer, address="1 Market Street", signer_name="Ada", signer_mobile="+15550100")
    past = timezone.now() - timedelta(minutes=5)
    Order.objects.update(expires_at=past)
    # Schedules stored before deadline buckets, one per order (their task still runs): slow enough per order
    # for the kill to land mid-way. (A bucket's task closes 500 orders per transaction: a kill rolls one back.)
    Schedule.objects.filter(func="orders.tasks.close_due_orders").delete()
    Schedule.objects.bulk_create(
        Schedule(
            func="orders.tasks.close_unpaid_order", args=repr((pk, "")), schedule_type=Schedule.ONCE, next_run=past
        )
        for pk in Order.objects.values_list("pk", flat=True)
    )
    env = shop_env(DJANGO_Q_WORKERS="1")

    with qcluster(env=env, log_dir=tmp_path / "first") as cluster:
        wait_until(lambda: Order.objects.filter(status="closed").exists(), timeout=FIRST_WAKE, what="the first close")
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=10)
    still_pending = Order.objects.filter(status="pending").count()
    assert 0 < still_pending < ORDERS, "the kill must land in the middle of the closes"

    with qcluster(env=env, log_dir=tmp_path / "second"):
        wait_until(
            lambda: not Order.objects.filter(status="pending").exists(),
            timeout=RECOVERY,
            what=f"every order to be closed:\n{read_log(tmp_path / 'second', 'qcluster')[-3000:]}",
        )

    assert Order.objects.filter(status="closed").count() == ORDERS
    assert StockMove.objects.filter(kind="return").count() == ORDERS  # one return per order, no more
    assert Stock.objects.get(goods=goods).quantity == ORDERS
    assert check_invariants() == []
