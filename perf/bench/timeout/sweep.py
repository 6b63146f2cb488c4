"""The timeout sweep: many overdue orders, closed by one django-q2 worker running ``close_overdue_orders``."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from harness.processes import REPO
from perf.bench.checkout.statements import CHECKOUT_BODY
from perf.bench.common.environment import clear_redis_queue

CLOSE_TASK = "orders.tasks.close_unpaid_order"  # one order's close (the design before deadline buckets)
SWEEP_TASK = "orders.tasks.close_overdue_orders"  # the sweep of overdue orders; every minute as the safety net


@dataclass(frozen=True)
class SweepResult:
    broker: str
    orders: int
    closed: int  # by the sweep tasks
    seconds: float  # the tasks' run time in the worker (django-q2's started → stopped), added up
    tasks: int
    stock_returned: bool  # the goods' stock is back where it was and the ledger has a return per order

    @property
    def per_second(self) -> float:
        return self.closed / self.seconds if self.seconds else 0.0


def postpone_safety_net() -> None:
    """The every-minute safety-net sweep (migration orders/0002) would close orders alongside what is measured:
    its next run is a day away."""
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.filter(func=SWEEP_TASK).update(next_run=timezone.now() + timedelta(days=1))


def create_overdue_orders(*, count: int, user, goods, prefix: str) -> None:
    """``count`` pending one-line orders past their deadline, with their sell ledger rows and stock taken.

    Bulk inserts through the ORM in one transaction: what ``create_order`` would have left behind if
    every order's timeout task had been lost, so the invariants (stock = ledger) hold.
    """
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from inventory.models import Stock, StockMove
    from orders.models import Order, OrderLine

    now = timezone.now()
    with transaction.atomic():
        orders = Order.objects.bulk_create(
            (
                Order(
                    order_no=f"{prefix}{number:09d}",
                    user=user,
                    pay_price=goods.price,
                    expires_at=now - timedelta(minutes=5),
                    **CHECKOUT_BODY,
                )
                for number in range(count)
            ),
            batch_size=1000,
        )
        if orders and orders[0].pk is None:  # a backend that cannot return ids from a bulk insert
            orders = list(Order.objects.filter(order_no__startswith=prefix))
        OrderLine.objects.bulk_create(
            (
                OrderLine(order=order, goods=goods, goods_name=goods.name, goods_price=goods.price, nums=1)
                for order in orders
            ),
            batch_size=1000,
        )
        StockMove.objects.bulk_create(
            (StockMove(goods=goods, order_no=order.order_no, kind=StockMove.Kind.SELL, quantity=1) for order in orders),
            batch_size=1000,
        )
        Stock.objects.filter(goods=goods).update(quantity=F("quantity") - count)


@dataclass(frozen=True)
class OverdueOrders:
    """Overdue orders of one new user and goods, their numbers starting with ``prefix``."""

    user: object
    goods: object
    stock_before: int  # the goods' stock before the orders took theirs
    prefix: str
    count: int

    def all_returned(self) -> bool:
        """The goods' stock is back where it was and the ledger has a return per order."""
        return check_returned(goods=self.goods, stock_before=self.stock_before, prefix=self.prefix, count=self.count)


def overdue_orders(*, count: int, label: str) -> OverdueOrders:
    """``count`` overdue orders of a new user and goods, numbered ``<LABEL><hex>…`` (``label`` upper case, no
    dashes); the safety-net sweep is postponed so that only the measured tasks close them."""
    from django.contrib.auth import get_user_model

    from inventory.models import Stock
    from perf.bench.checkout.statements import new_goods

    user = get_user_model().objects.create_user(username=f"{label}-{secrets.token_hex(4)}", password=None)
    goods = new_goods(stock=10**9, prefix=label)
    stock_before = Stock.objects.get(goods=goods).quantity
    postpone_safety_net()
    prefix = f"{label.upper().replace('-', '')}{secrets.token_hex(3)}"
    create_overdue_orders(count=count, user=user, goods=goods, prefix=prefix)
    return OverdueOrders(user=user, goods=goods, stock_before=stock_before, prefix=prefix, count=count)


def in_shop(env: dict[str, str], code: str, *, timeout: float = 120) -> str:
    """Run ``code`` in ``manage.py shell`` with the shop's environment (its broker); its last output line."""
    output = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    ).stdout
    return output.strip().splitlines()[-1]


def enqueue_sweep(*, env: dict[str, str]) -> str:
    """Queue ``orders.tasks.close_overdue_orders`` on the broker ``env`` selects; returns the task id."""
    return in_shop(env, f"from django_q.tasks import async_task; print(async_task({SWEEP_TASK!r}))")


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.25):
    """Poll ``predicate`` until it returns something truthy (each poll sees the other processes' latest commits)."""
    from django.db import connections

    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        connections.close_all()  # the next poll sees the cluster's commits, not an old snapshot
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_task(task_id: str, *, timeout: float):
    """django-q2's record of the finished task (saved by the cluster with either broker)."""
    from django_q.models import Task

    return wait_for(
        lambda: Task.objects.filter(id=task_id).first(), timeout=timeout, what=f"the task {task_id}", interval=0.5
    )


def check_returned(*, goods, stock_before: int, prefix: str, count: int) -> bool:
    from inventory.models import Stock, StockMove

    returns = StockMove.objects.filter(order_no__startswith=prefix, kind=StockMove.Kind.RETURN).count()
    return Stock.objects.get(goods=goods).quantity == stock_before and returns == count


def measure_sweep(*, env: dict[str, str], broker: str, orders: int, redis_url: str, log_dir: Path) -> SweepResult:
    """``orders`` overdue orders closed by sweep tasks on one worker of a real cluster with ``broker``."""
    from harness.processes import qcluster

    env = {**env, "DJANGO_Q_WORKERS": "1"}
    if broker == "redis":
        env["DJANGO_Q_REDIS_URL"] = redis_url
        clear_redis_queue(redis_url)
    began = time.perf_counter()
    overdue = overdue_orders(count=orders, label=f"sweep-{broker}")
    print(f"  created {orders} overdue orders in {time.perf_counter() - began:.1f} s", flush=True)
    closed, seconds, tasks = 0, 0.0, 0
    with qcluster(env=env, log_path=log_dir / f"qcluster-{broker}.log"):
        # One sweep task works within a time budget (orders.expiry.TIME_BUDGET): queue the next
        # one until every overdue order is closed; their run times in the worker add up.
        while closed < orders:
            task = wait_for_task(enqueue_sweep(env=env), timeout=300)
            if not task.success:
                raise RuntimeError(f"the sweep task failed: {str(task.result)[:500]}")
            tasks += 1
            closed += int(task.result)
            seconds += task.time_taken()
            if not task.result:
                break
    result = SweepResult(
        broker=broker,
        orders=orders,
        closed=closed,
        seconds=seconds,
        tasks=tasks,
        stock_returned=overdue.all_returned(),
    )
    print(
        f"  sweep ({broker} broker): closed {result.closed} in {result.seconds:.2f} s ({tasks} tasks) = "
        f"{result.per_second:.0f} orders/s; stock returned: {result.stock_returned}",
        flush=True,
    )
    return result
