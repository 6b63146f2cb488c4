"""The burst and the steady stream of perf/bench/timeout/run.py: unpaid orders closed by a real ``qcluster``."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

from harness.processes import qcluster
from perf.bench.common.environment import clear_redis_queue
from perf.bench.timeout.results import Burst, Steady, TimeoutSettings
from perf.bench.timeout.sweep import CLOSE_TASK, in_shop, overdue_orders, postpone_safety_net, wait_for


def _broker_env(env: dict[str, str], broker: str, settings: TimeoutSettings) -> dict[str, str]:
    env = {**env, "DJANGO_Q_WORKERS": "2"}
    if broker == "redis":
        clear_redis_queue(settings.redis_url)
        env["DJANGO_Q_REDIS_URL"] = settings.redis_url
    else:
        env.pop("DJANGO_Q_REDIS_URL", None)
    return env


def _only_this_measurement_closes() -> None:
    """Nothing left by earlier phases closes this measurement's orders: the safety net postponed, the bucket
    schedules of earlier checkouts (the shop phases' week-long deadlines) deleted, the ORM queue emptied."""
    from django_q.models import OrmQ, Schedule

    postpone_safety_net()
    Schedule.objects.filter(func="orders.tasks.close_due_orders").delete()
    OrmQ.objects.all().delete()


def _pending(prefix: str) -> int:
    from orders.models import Order

    return Order.objects.filter(order_no__startswith=prefix, status=Order.Status.PENDING).count()


def _cluster_ready(env: dict[str, str], user, goods, prefix: str) -> None:
    """A probe order closed through the broker: the cluster's workers are up (started, imported, traced)."""
    from orders.models import Order
    from perf.bench.timeout.sweep import create_overdue_orders

    create_overdue_orders(count=1, user=user, goods=goods, prefix=prefix)
    probe = Order.objects.get(order_no__startswith=prefix)
    in_shop(env, f"from django_q.tasks import async_task; print(async_task({CLOSE_TASK!r}, {probe.pk}, ''))")
    wait_for(lambda: not _pending(prefix), timeout=180, what="the cluster to close a probe order")


# --------------------------------------------------------------------------- burst


def _due_schedules(orders, design: str) -> None:
    """The schedules the checkout left for these orders, due now: their deadline bucket's (the shop's design),
    or one per order naming ``orders.tasks.close_unpaid_order`` (the design before, still run when stored)."""
    from django.db import transaction
    from django.utils import timezone
    from django_q.models import Schedule

    from orders.expiry import ensure_close_scheduled, forget_scheduled_buckets

    due = timezone.now() - timedelta(seconds=1)
    if design == "bucket":
        forget_scheduled_buckets()
        with transaction.atomic():
            for order in orders:  # all due at once: one bucket, one schedule (the others find it)
                ensure_close_scheduled(deadline=order.expires_at)
        Schedule.objects.filter(func="orders.tasks.close_due_orders").update(next_run=due)
        return
    Schedule.objects.bulk_create(
        (
            Schedule(func=CLOSE_TASK, args=repr((order.pk, "")), schedule_type=Schedule.ONCE, next_run=due)
            for order in orders
        ),
        batch_size=1000,
    )


def measure_burst(env: dict[str, str], broker: str, settings: TimeoutSettings, design: str = "bucket") -> Burst:
    from django.db.models import Max

    from orders.models import Order

    env = {**_broker_env(env, broker, settings), "DJANGO_SETTINGS_MODULE": "perf.bench.timeout.no_scheduler_settings"}
    n = settings.burst_orders if design == "bucket" else settings.per_order_burst_orders
    _only_this_measurement_closes()
    overdue = overdue_orders(count=n, label=f"burst-{broker}")
    prefix = overdue.prefix
    _due_schedules(Order.objects.filter(order_no__startswith=prefix).only("pk", "expires_at"), design)
    with qcluster(env=env, log_path=settings.log_dir / f"qcluster-burst-{broker}.log"):
        _cluster_ready(env, overdue.user, overdue.goods, f"PROBE{prefix}")
        began, ended = map(
            float,
            in_shop(
                env,
                (
                    "import time; from django_q.scheduler import scheduler; began = time.time(); scheduler(); "
                    "print(began, time.time())"
                ),
                timeout=600,
            ).split(),
        )
        wait_for(
            lambda: not _pending(prefix), timeout=max(600, n / 20), what=f"{n} burst orders to close", interval=0.5
        )
    orders = Order.objects.filter(order_no__startswith=prefix)
    last = orders.aggregate(last=Max("ended_at"))["last"].timestamp()
    closed = orders.filter(status=Order.Status.CLOSED).count()
    returned = overdue.all_returned()
    result = Burst(
        broker=broker,
        design=design,
        orders=n,
        closed=closed,
        pass_seconds=ended - began,
        seconds=last - began,
        exactly_once=returned and closed == n,
    )
    print(
        f"  burst ({broker}, {design}): {closed} of {n} closed {result.seconds:.1f} s after the pass began "
        f"(pass {result.pass_seconds:.1f} s) = {result.per_second:.0f} closes/s; exactly once: {result.exactly_once}",
        flush=True,
    )
    return result


# --------------------------------------------------------------------------- steady


def _place_steadily(*, rate: float, seconds: float, timeout: int, goods: list, prefix: str) -> tuple[int, float]:
    """Place ``rate`` orders/s for ``seconds`` with ``create_order`` (4 threads), left unpaid."""
    from concurrent.futures import ThreadPoolExecutor

    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import override_settings

    from carts.services import add_to_cart
    from orders.checkout import create_order
    from perf.bench.checkout.statements import CHECKOUT_BODY

    users = [get_user_model().objects.create_user(username=f"{prefix}-{i}", password=None) for i in range(64)]
    total = int(rate * seconds)
    began = time.monotonic()

    def place(number: int) -> None:
        pause = began + number / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        user = users[number % len(users)]
        try:
            add_to_cart(user=user, goods_id=goods[number % len(goods)].pk, quantity=1)
            create_order(user=user, **CHECKOUT_BODY)
        finally:
            connections.close_all()

    with override_settings(ORDER_PAY_TIMEOUT=timeout), ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(place, range(total)))
    return total, total / (time.monotonic() - began)


def measure_steady(env: dict[str, str], broker: str, settings: TimeoutSettings) -> Steady:
    from orders.models import Order
    from perf.bench.checkout.statements import new_goods

    env = _broker_env(env, broker, settings)
    goods = [new_goods(stock=10**9, prefix=f"steady-{broker}") for _ in range(8)]
    _only_this_measurement_closes()
    prefix = f"steady-{broker}-{secrets.token_hex(3)}"
    with qcluster(env=env, log_path=settings.log_dir / f"qcluster-steady-{broker}.log"):
        _cluster_ready(env, *_probe_owner(prefix), f"PROBE{secrets.token_hex(4)}")
        placed, rate = _place_steadily(
            rate=settings.steady_rate,
            seconds=settings.steady_seconds,
            timeout=settings.steady_timeout,
            goods=goods,
            prefix=prefix,
        )
        mine = Order.objects.filter(user__username__startswith=prefix)
        wait_for(
            lambda: not mine.filter(status=Order.Status.PENDING).exists(),
            timeout=settings.steady_timeout + 180,
            what="the steady orders to close",
            interval=1.0,
        )
    closed = list(mine.filter(status=Order.Status.CLOSED).values_list("expires_at", "ended_at"))
    result = Steady(
        broker=broker,
        placed=placed,
        closed=len(closed),
        rate=rate,
        lags=[(ended - expires).total_seconds() for expires, ended in closed],
    )
    print(
        f"  steady ({broker}): {placed} orders at {rate:.1f}/s, {result.closed} closed; lag after the deadline "
        f"p50 {result.lag(0.5):.1f} s, p99 {result.lag(0.99):.1f} s, max {max(result.lags, default=0):.1f} s",
        flush=True,
    )
    return result


def _probe_owner(prefix: str):
    from django.contrib.auth import get_user_model

    from perf.bench.checkout.statements import new_goods

    user = get_user_model().objects.create_user(username=f"probe-{prefix}", password=None)
    return user, new_goods(stock=10, prefix="probe")
