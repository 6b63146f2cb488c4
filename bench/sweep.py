"""The timeout sweep: many overdue orders, closed by one django-q2 worker running ``close_overdue_orders``."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

from bench.server import REPO
from bench.statements import CHECKOUT_BODY


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
    return in_shop(env, "from django_q.tasks import async_task; print(async_task('orders.tasks.close_overdue_orders'))")


def wait_for_task(task_id: str, *, timeout: float):
    """django-q2's record of the finished task (saved by the cluster with either broker)."""
    from django.db import connections
    from django_q.models import Task

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = Task.objects.filter(id=task_id).first()
        connections.close_all()  # see the cluster's commit, not an old snapshot
        if task is not None:
            return task
        time.sleep(0.5)
    raise RuntimeError(f"the sweep task {task_id} did not finish in {timeout}s")


def check_returned(*, goods, stock_before: int, prefix: str, count: int) -> bool:
    from inventory.models import Stock, StockMove

    returns = StockMove.objects.filter(order_no__startswith=prefix, kind=StockMove.Kind.RETURN).count()
    return Stock.objects.get(goods=goods).quantity == stock_before and returns == count
