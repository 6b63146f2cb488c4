"""Timeout closes per minute with the collector up, refused and hanging (one qcluster, two workers, Redis).

    python -m perf closes [--orders 200] [--database-url mysql://root@127.0.0.1:3306/mall_bench_closes]

For each collector state: that many overdue orders, one ``close_unpaid_order`` task each queued at
once on a Redis broker of the bench's own, and the time until the last one is closed. Traces and
metrics go over OTLP/gRPC through a proxy that forwards to a sink, refuses connections or accepts them
and never answers. The figures go to docs/SOAK.md.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from perf.bench.common.environment import prepare  # noqa: E402
from perf.bench.common.otlp_sink import OtlpSink  # noqa: E402
from perf.bench.soak.faults import CollectorProxy, RedisServer, Supervised  # noqa: E402
from perf.bench.soak.run import shop_environment  # noqa: E402

MODES = ("up", "refuse", "hang")


def measure(mode: str, *, orders: int, env: dict[str, str], collector: CollectorProxy, log_dir: Path) -> float:
    """Seconds from queueing ``orders`` close tasks to the last order closed."""
    from django.db import connections
    from django_q.tasks import async_task

    from orders.models import Order
    from perf.bench.checkout.statements import new_buyer, new_goods
    from perf.bench.timeout.sweep import create_overdue_orders

    user, _ = new_buyer(prefix=f"closes-{mode}")
    goods = new_goods(stock=orders, prefix=f"closes-{mode}")
    prefix = f"{mode[:3]}{secrets.token_hex(3)}"
    create_overdue_orders(count=orders, user=user, goods=goods, prefix=prefix)
    ids = list(Order.objects.filter(order_no__startswith=prefix).values_list("pk", flat=True))
    collector.set_mode(mode)
    worker = Supervised(f"qcluster-{mode}", [sys.executable, "manage.py", "qcluster"], env=env, log_dir=log_dir)
    worker.start()
    try:
        time.sleep(3)  # the cluster starts its workers
        began = time.monotonic()
        for order_id in ids:
            async_task("orders.tasks.close_unpaid_order", order_id)
        deadline = began + 900
        while time.monotonic() < deadline:
            connections.close_all()
            if not Order.objects.filter(pk__in=ids, status=Order.Status.PENDING).exists():
                return time.monotonic() - began
            time.sleep(0.2)
        raise RuntimeError(f"{mode}: not all closed in 900 s")
    finally:
        worker.stop()
        collector.set_mode("up")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=150, help="close tasks per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds alternating the collector states")
    parser.add_argument("--database-url", default="mysql://root@127.0.0.1:3306/mall_bench_closes")
    parser.add_argument("--log-dir", default=str(REPO / "perf" / "bench" / "closes-logs"))
    args = parser.parse_args(argv)
    args.pay_timeout = 1800
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    sink = OtlpSink().start()
    collector = CollectorProxy(int(sink.grpc_endpoint.rsplit(":", 1)[1])).start()
    redis = RedisServer(log_dir / "redis.log").start()
    env = shop_environment(args, redis_url=redis.url, collector=collector.endpoint)
    env["DJANGO_Q_WORKERS"] = "2"
    prepare(env)  # this process queues the close tasks on the same broker
    logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per queued task
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for turn in range(args.rounds):
            order = MODES[turn % len(MODES) :] + MODES[: turn % len(MODES)]  # no state always goes first
            for mode in order:
                seconds = measure(mode, orders=args.orders, env=env, collector=collector, log_dir=log_dir)
                rates[mode].append(args.orders / seconds * 60)
                print(f"round {turn + 1} collector {mode:7s} {args.orders} closes in {seconds:6.1f} s", flush=True)
    finally:
        redis.stop()
        collector.stop()
        sink.stop()
    print("\n| collector | closes/min (median of rounds) | range | ÷ up |\n| --- | ---: | ---: | ---: |")
    up = statistics.median(rates["up"])
    for mode in MODES:
        median = statistics.median(rates[mode])
        print(f"| {mode} | {median:.0f} | {min(rates[mode]):.0f}–{max(rates[mode]):.0f} | {median / up:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
