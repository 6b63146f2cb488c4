"""The payment timeout at scale: burst of due orders, steady stream of unpaid orders, scheduler pass time.

    python -m perf timeout --database-url mysql://root@127.0.0.1:3306/mall_bench
    python -m perf timeout --quick                       # smoke-sized (CI): checks it runs, not timing

Also the "timeout" section of ``perf/bench/run.py``. Each part runs a real ``manage.py qcluster`` (2 workers,
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
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python -m perf timeout` from anywhere

from perf.bench.timeout.parts import measure_burst, measure_steady  # noqa: E402
from perf.bench.timeout.results import TimeoutResults, TimeoutSettings, markdown  # noqa: E402
from perf.bench.timeout.scheduler_pass import measure_passes  # noqa: E402


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


def main(argv=None) -> int:
    from perf.bench import run
    from perf.bench.common.environment import prepare, shop_environment, tracing_on

    parser = argparse.ArgumentParser(prog="python -m perf timeout", description=__doc__.split("\n\n")[0])
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
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    env = shop_environment(args.database_url)
    prepare(env)
    from perf.bench.common.otlp_sink import OtlpSink

    with OtlpSink() as sink:
        traced = tracing_on(env, sink.endpoint_for("grpc"), "grpc")
        results = measure(traced, settings, skip={s.strip() for s in args.skip.split(",") if s.strip()})
    print("\n" + markdown(results))
    if args.report_md:
        Path(args.report_md).write_text(markdown(results))
    for problem in results.problems():
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if results.problems() else 0


if __name__ == "__main__":
    raise SystemExit(main())
