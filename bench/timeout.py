"""The payment timeout at scale: burst of due orders, steady stream of unpaid orders, scheduler pass time.

    python bench/timeout.py --database-url mysql://root@127.0.0.1:3306/mall_bench
    python bench/timeout.py --quick                       # smoke-sized (CI): checks it runs, not timing

Also the "timeout" section of ``bench/run.py``. Each part runs a real ``manage.py qcluster`` (2 workers,
traced like the shop, exporting to the bench's OTLP receiver) on the ORM broker, then Redis:

- burst: N overdue orders, each with its ONCE schedule due (as the checkout leaves them), the safety-net
  sweep postponed; one scheduler pass (django-q2's ``scheduler()``, run by the bench so that its start is
  known; the cluster's own is off) → time until every order is closed, closes/s;
- steady: orders placed in-process by ``create_order`` at a steady rate with a short ORDER_PAY_TIMEOUT,
  left unpaid; the cluster's own scheduler (every 30 s) → close lag after the deadline, p50/p99/max;
- scheduler pass: 10k / 100k / 1M pending (future) schedules bulk-inserted, then django-q2's pass with
  nothing due, with the index on next_run (migration orders/0005) and without it.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.scheduler_pass import PassTime, measure_passes  # noqa: E402
from bench.server import qcluster  # noqa: E402
from bench.sweep import in_shop  # noqa: E402

CLOSE_TASK = "orders.tasks.close_unpaid_order"
TARGETS = {"closes_per_second": 500.0, "lag_p99": 35.0, "pass_ms_at_1m": 10.0}


@dataclass
class TimeoutSettings:
    burst_orders: int = 10_000
    per_order_burst_orders: int = 2_000  # the design before deadline buckets: its rate, on fewer orders
    steady_rate: float = 50.0
    steady_seconds: float = 180.0
    steady_timeout: int = 10
    pending_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    brokers: tuple[str, ...] = ("orm", "redis")
    redis_url: str = "redis://127.0.0.1:6379/14"
    log_dir: Path = Path("/tmp/mall_bench_logs")

    @classmethod
    def quick(cls, **overrides) -> TimeoutSettings:
        return cls(
            burst_orders=300,
            per_order_burst_orders=100,
            steady_rate=10,
            steady_seconds=5,
            steady_timeout=2,
            pending_sizes=(1_000, 5_000),
            **overrides,
        )


@dataclass
class Burst:
    broker: str
    design: str  # "bucket": one schedule per deadline bucket (the shop's); "per-order": one schedule and task each
    orders: int
    closed: int
    pass_seconds: float  # the scheduler pass that queued them
    seconds: float  # pass start → last close
    exactly_once: bool  # every order closed, stock back, one return ledger row per order

    @property
    def per_second(self) -> float:
        return self.closed / self.seconds if self.seconds else 0.0


@dataclass
class Steady:
    broker: str
    placed: int
    closed: int
    rate: float  # achieved placements/s
    lags: list[float] = field(default_factory=list)  # seconds after the deadline

    def lag(self, q: float) -> float:
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class TimeoutResults:
    bursts: list[Burst] = field(default_factory=list)
    steadies: list[Steady] = field(default_factory=list)
    passes: list[PassTime] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = [
            f"burst ({b.broker}): {b.closed} of {b.orders} closed exactly once"
            for b in self.bursts
            if not b.exactly_once
        ]
        found += [
            f"steady ({s.broker}): {s.closed} of {s.placed} closed" for s in self.steadies if s.closed != s.placed
        ]
        return found


# --------------------------------------------------------------------------- helpers


def _broker_env(env: dict[str, str], broker: str, settings: TimeoutSettings) -> dict[str, str]:
    env = {**env, "DJANGO_Q_WORKERS": "2"}
    if broker == "redis":
        import redis

        client = redis.from_url(settings.redis_url)
        for key in client.scan_iter("django_q:mall:*"):
            client.delete(key)
        env["DJANGO_Q_REDIS_URL"] = settings.redis_url
    else:
        env.pop("DJANGO_Q_REDIS_URL", None)
    return env


def _only_this_measurement_closes() -> None:
    """Nothing left by earlier phases closes this measurement's orders: the safety net postponed, the bucket
    schedules of earlier checkouts (the shop phases' week-long deadlines) deleted, the ORM queue emptied."""
    from django.utils import timezone
    from django_q.models import OrmQ, Schedule

    Schedule.objects.filter(func="orders.tasks.close_overdue_orders").update(
        next_run=timezone.now() + timedelta(days=1)
    )
    Schedule.objects.filter(func="orders.timeouts.close_due_orders").delete()
    OrmQ.objects.all().delete()


def _wait(predicate, *, timeout: float, what: str, interval: float = 0.25):
    from django.db import connections

    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        connections.close_all()  # the next poll sees the cluster's commits
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _pending(prefix: str) -> int:
    from orders.models import Order

    return Order.objects.filter(order_no__startswith=prefix, status=Order.Status.PENDING).count()


def _cluster_ready(env: dict[str, str], user, goods, prefix: str) -> None:
    """A probe order closed through the broker: the cluster's workers are up (started, imported, traced)."""
    from bench.sweep import create_overdue_orders
    from orders.models import Order

    create_overdue_orders(count=1, user=user, goods=goods, prefix=prefix)
    probe = Order.objects.get(order_no__startswith=prefix)
    in_shop(env, f"from django_q.tasks import async_task; print(async_task({CLOSE_TASK!r}, {probe.pk}, ''))")
    _wait(lambda: not _pending(prefix), timeout=180, what="the cluster to close a probe order")


# --------------------------------------------------------------------------- burst


def _due_schedules(orders, design: str) -> None:
    """The schedules the checkout left for these orders, due now: their deadline bucket's (the shop's design),
    or one per order naming ``orders.tasks.close_unpaid_order`` (the design before, still run when stored)."""
    from django.db import transaction
    from django.utils import timezone
    from django_q.models import Schedule

    from orders.timeouts import ensure_close_scheduled, forget_scheduled_buckets

    due = timezone.now() - timedelta(seconds=1)
    if design == "bucket":
        forget_scheduled_buckets()
        with transaction.atomic():
            for order in orders:  # all due at once: one bucket, one schedule (the others find it)
                ensure_close_scheduled(deadline=order.expires_at)
        Schedule.objects.filter(func="orders.timeouts.close_due_orders").update(next_run=due)
        return
    Schedule.objects.bulk_create(
        (
            Schedule(func=CLOSE_TASK, args=repr((order.pk, "")), schedule_type=Schedule.ONCE, next_run=due)
            for order in orders
        ),
        batch_size=1000,
    )


def measure_burst(env: dict[str, str], broker: str, settings: TimeoutSettings, design: str = "bucket") -> Burst:
    from django.contrib.auth import get_user_model
    from django.db.models import Max

    from bench.statements import new_goods
    from bench.sweep import check_returned, create_overdue_orders
    from inventory.models import Stock
    from orders.models import Order

    env = {**_broker_env(env, broker, settings), "DJANGO_SETTINGS_MODULE": "bench.no_scheduler_settings"}
    user = get_user_model().objects.create_user(username=f"burst-{secrets.token_hex(4)}", password=None)
    goods = new_goods(stock=10**9, prefix=f"burst-{broker}")
    stock_before = Stock.objects.get(goods=goods).quantity
    _only_this_measurement_closes()
    prefix = f"BURST{broker.upper()}{secrets.token_hex(3)}"
    n = settings.burst_orders if design == "bucket" else settings.per_order_burst_orders
    create_overdue_orders(count=n, user=user, goods=goods, prefix=prefix)
    _due_schedules(Order.objects.filter(order_no__startswith=prefix).only("pk", "expires_at"), design)
    with qcluster(env=env, log_path=settings.log_dir / f"qcluster-burst-{broker}.log"):
        _cluster_ready(env, user, goods, f"PROBE{prefix}")
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
        _wait(lambda: not _pending(prefix), timeout=max(600, n / 20), what=f"{n} burst orders to close", interval=0.5)
    orders = Order.objects.filter(order_no__startswith=prefix)
    last = orders.aggregate(last=Max("ended_at"))["last"].timestamp()
    closed = orders.filter(status=Order.Status.CLOSED).count()
    returned = check_returned(goods=goods, stock_before=stock_before, prefix=prefix, count=n)
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

    from bench.statements import CHECKOUT_BODY
    from carts.services import add_to_cart
    from orders.services import create_order

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
    from bench.statements import new_goods
    from orders.models import Order

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
        _wait(
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

    from bench.statements import new_goods

    user = get_user_model().objects.create_user(username=f"probe-{prefix}", password=None)
    return user, new_goods(stock=10, prefix="probe")


# --------------------------------------------------------------------------- the section


def measure(env: dict[str, str], settings: TimeoutSettings, skip: set[str] = frozenset()) -> TimeoutResults:
    """All parts, in-process on the Django database this process is set up for (the bench's own)."""
    results = TimeoutResults()
    for broker in settings.brokers:
        if "burst" not in skip:
            results.bursts.append(measure_burst(env, broker, settings))
        if "per-order" not in skip:
            results.bursts.append(measure_burst(env, broker, settings, design="per-order"))
        if "steady" not in skip:
            results.steadies.append(measure_steady(env, broker, settings))
    if "passes" not in skip:
        results.passes = measure_passes(settings.pending_sizes)
    return results


def rows(results: TimeoutResults) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows for the report."""
    out = []
    for b in results.bursts:
        how = "their bucket's task" if b.design == "bucket" else "one task each (the design before buckets)"
        out.append(
            (
                f"burst, {b.broker} broker: {b.orders} due orders closed by {how}",
                f"{b.per_second:.0f} closes/s ({b.seconds:.1f} s from the scheduler pass's start to the last "
                f"close; the pass took {b.pass_seconds:.1f} s); exactly once: {b.exactly_once}",
                f"≥ {TARGETS['closes_per_second']:.0f} closes/s",
            )
        )
    for s in results.steadies:
        out.append(
            (
                f"steady, {s.broker} broker: {s.placed} unpaid orders at {s.rate:.1f}/s",
                f"close lag after the deadline p50 {s.lag(0.5):.1f} s, p99 {s.lag(0.99):.1f} s, "
                f"max {max(s.lags, default=float('nan')):.1f} s; {s.closed} closed",
                f"p99 ≤ {TARGETS['lag_p99']:.0f} s",
            )
        )
    for p in results.passes:
        out.append(
            (
                f"scheduler pass, {p.pending:,} pending schedules",
                f"whole pass {p.indexed_ms:.2f} ms, its locking read {p.query_indexed_ms:.2f} ms with the index on "
                f"next_run; without: {p.unindexed_ms:.1f} ms, read {p.query_unindexed_ms:.1f} ms",
                f"≤ {TARGETS['pass_ms_at_1m']:.0f} ms at 1M",
            )
        )
    return out


def markdown(results: TimeoutResults) -> str:
    lines = ["| figure | value | target |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(results)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from bench import run

    parser = argparse.ArgumentParser(prog="python bench/timeout.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=run.parse_args([]).database_url)
    parser.add_argument("--redis-url", default=TimeoutSettings.redis_url)
    parser.add_argument("--brokers", default="orm,redis")
    parser.add_argument("--burst-orders", type=int, default=TimeoutSettings.burst_orders)
    parser.add_argument("--per-order-burst-orders", type=int, default=TimeoutSettings.per_order_burst_orders)
    parser.add_argument("--steady-rate", type=float, default=TimeoutSettings.steady_rate)
    parser.add_argument("--steady-seconds", type=float, default=TimeoutSettings.steady_seconds)
    parser.add_argument("--steady-timeout", type=int, default=TimeoutSettings.steady_timeout)
    parser.add_argument("--pending", default="10000,100000,1000000", help="pending schedule counts of the pass")
    parser.add_argument("--skip", default="", help="comma separated: burst, per-order, steady, passes")
    parser.add_argument("--quick", action="store_true", help="smoke-sized; the figures mean nothing")
    parser.add_argument("--log-dir", default="/tmp/mall_bench_logs")
    parser.add_argument("--report-md", help="also write the results as a Markdown table to this file")
    args = parser.parse_args(argv)
    common = dict(brokers=tuple(args.brokers.split(",")), redis_url=args.redis_url, log_dir=Path(args.log_dir))
    if args.quick:
        settings = TimeoutSettings.quick(**common)
    else:
        settings = TimeoutSettings(
            burst_orders=args.burst_orders,
            per_order_burst_orders=args.per_order_burst_orders,
            steady_rate=args.steady_rate,
            steady_seconds=args.steady_seconds,
            steady_timeout=args.steady_timeout,
            pending_sizes=tuple(int(n) for n in args.pending.split(",")),
            **common,
        )
    env = run.prepare(run.parse_args(["--database-url", args.database_url, "--log-dir", args.log_dir]))
    from bench.otlp_sink import OtlpSink

    with OtlpSink() as sink:
        traced = run.tracing_on(env, sink.endpoint_for("grpc"), "grpc")
        results = measure(traced, settings, skip={s.strip() for s in args.skip.split(",") if s.strip()})
    print("\n" + markdown(results))
    if args.report_md:
        Path(args.report_md).write_text(markdown(results))
    for problem in results.problems():
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if results.problems() else 0


if __name__ == "__main__":
    raise SystemExit(main())
