"""Benchmark of the mall shop: tracing cost, hot item, statement count, raw-driver floor, timeout sweep, memory.

    python -m perf bench                                   # SQLite, a temporary database
    python -m perf bench --database-url mysql://root@127.0.0.1:3306/mall_bench
    python -m perf bench --quick                           # smoke-sized counts (CI): checks it runs, not timing
    python -m perf bench --floor                           # also the raw-driver floor (opt-in, see --floor)

It creates (drops first) and migrates its own database, whose name must contain "bench", seeds it, starts
the shop under gunicorn and drives it over HTTP with concurrent clients, alternating the configurations
over several rounds so that drift on a shared machine hits all of them alike. Ratios are printed first
(median over rounds of the per-round ratio, with the range), absolute figures second. See
docs/PERFORMANCE.md for what each figure means and the latest results.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python -m perf bench` from anywhere

from perf.bench.common import targets  # noqa: E402
from perf.bench.common.environment import prepare, shop_environment, tracing_on  # noqa: E402
from perf.bench.common.results import Results  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m perf bench",
        description=__doc__.split("\n\n")[0],
        epilog=targets.summary(),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    default_db = f"sqlite:///{Path(tempfile.gettempdir()) / 'mall_bench' / 'bench.sqlite3'}"
    parser.add_argument("--database-url", default=default_db, help="the bench's own database: dropped and recreated")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (threads), each its own user")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (as gunicorn.conf.py)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds alternating the configurations")
    parser.add_argument("--cycles", type=int, default=150, help="checkout cycles per measured batch")
    parser.add_argument("--warmup", type=int, default=48, help="unmeasured cycles after each server start")
    parser.add_argument(
        "--otlp-protocol", choices=["grpc", "http/protobuf"], default="grpc", help="how the traced shop exports"
    )
    parser.add_argument("--sweep-orders", type=int, default=10_000, help="overdue orders per sweep")
    parser.add_argument("--memory-checkouts", type=int, default=5_000, help="checkouts per memory step (3 steps)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="Redis broker of the sweep")
    parser.add_argument(
        "--traced-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the traced shop, for experiments (e.g. OTEL_METRICS_EXPORTER=none); repeatable",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="parts to leave out: tracing, curve, store, hot, statements, sweep, redis, memory, timeout",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also replay the shop's checkout on the raw driver (perf/bench/checkout/floor.py); opt-in because its "
        "parameter rebuilders follow the shop's SQL by hand, so a SQL change may need a floor change before this runs",
    )
    parser.add_argument("--plot", action="store_true", help="also draw the figures as PNGs into --plot-dir")
    parser.add_argument("--plot-dir", default=str(REPO / "docs" / "img"), help="where --plot writes its PNGs")
    parser.add_argument(
        "--quick", action="store_true", help="smoke-sized counts (overrides the counts above); the figures mean nothing"
    )
    parser.add_argument(
        "--log-dir", default=str(Path(tempfile.gettempdir()) / "mall_bench_logs"), help="gunicorn and qcluster logs"
    )
    parser.add_argument("--report-md", help="also write the results as Markdown tables to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.cycles, args.warmup = 2, 40, 16
        args.sweep_orders, args.memory_checkouts = 300, 150
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if not args.floor:
        args.skip.add("floor")
    return args


def measure_timeouts(args, env):
    """The payment timeout section, smaller than ``perf/bench/timeout/run.py``'s defaults so the whole run stays short:
    a 45 s steady stream, 500 orders for the per-order design, up to 100k pending schedules."""
    from perf.bench.timeout.results import TimeoutSettings
    from perf.bench.timeout.run import measure

    common = dict(
        redis_url=args.redis_url,
        log_dir=Path(args.log_dir),
        brokers=("orm",) if "redis" in args.skip else ("orm", "redis"),
    )
    if args.quick:
        return measure(env, TimeoutSettings.quick(**common))
    return measure(
        env,
        TimeoutSettings(
            burst_orders=args.sweep_orders, per_order_burst_orders=500, steady_seconds=45,
            pending_sizes=(10_000, 100_000), **common,
        ),
    )  # fmt: skip


def main(argv=None) -> int:
    args = parse_args(argv)
    command = "python -m perf bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    env = shop_environment(args.database_url)
    prepare(env)  # this process counts statements and seeds data in-process
    from perf.bench.checkout.floor import check_replay
    from perf.bench.checkout.rounds import measure_memory, measure_rounds, seed
    from perf.bench.checkout.statements import capture_checkout_cycle, checkout_statement_counts, stock_lock_hold
    from perf.bench.common import report
    from perf.bench.common.otlp_sink import OtlpSink
    from perf.bench.timeout.sweep import measure_sweep

    seed_data = seed(args.clients)
    results = Results()

    if "statements" not in args.skip:
        results.statement_counts = checkout_statement_counts()
        print("statements per checkout: " + report.statement_line(results.statement_counts), flush=True)
    if "hot" not in args.skip:
        results.lock_hold = stock_lock_hold(checkouts=20 if args.quick else 200)
        print(f"stock lock held per checkout (in-process): {report.lock_hold_line(results.lock_hold)}", flush=True)
    cycle = capture_checkout_cycle()
    if "store" not in args.skip:
        from perf.bench.traces.store import store_write_cost

        statements = [s.sql for s in cycle.statements if not s.sql.upper().startswith("BEGIN")]
        results.store_cost = store_write_cost(checkouts=20 if args.quick else 400, statements=statements)
        print(f"trace store, in-process: {report.store_cost_line(results.store_cost, results.lock_hold)}", flush=True)
    plan = None
    if "floor" not in args.skip:
        plan = check_replay(cycle)  # stops here, naming the statement, when the floor no longer matches the shop
        results.floor_statements = sum(len(group.steps) for group in plan)

    with OtlpSink() as sink:
        on_env = tracing_on(env, sink.endpoint_for(args.otlp_protocol), args.otlp_protocol, args.traced_env)
        measure_rounds(args, env, sink, seed_data, results, plan, cycle.fingerprint)
        if "memory" not in args.skip:
            print("memory", flush=True)
            measure_memory(args, on_env, seed_data, results)
        if "sweep" not in args.skip:
            print("timeout sweep", flush=True)
            brokers = ["orm"] + ([] if "redis" in args.skip else ["redis"])
            for broker in brokers:
                results.sweeps.append(
                    measure_sweep(
                        env=on_env, broker=broker, orders=args.sweep_orders, redis_url=args.redis_url,
                        log_dir=Path(args.log_dir),
                    )
                )  # fmt: skip
        if "timeout" not in args.skip:
            print("payment timeout at scale (perf/bench/timeout/run.py; it runs the full sizes on its own)", flush=True)
            results.timeouts = measure_timeouts(args, on_env)

    results.seconds = time.perf_counter() - started
    machine = report.machine(args)
    print()
    print(report.text(args, results, machine, command))
    if results.timeouts is not None:
        from perf.bench.timeout.results import markdown as timeout_markdown

        print("\n" + timeout_markdown(results.timeouts))
    if args.plot:
        from perf.bench.common.plots import draw_all

        for note in draw_all(results, Path(args.plot_dir)):
            print(note)
    if args.report_md:
        timeouts = "" if results.timeouts is None else "\n" + timeout_markdown(results.timeouts)
        Path(args.report_md).write_text(report.markdown(args, results, machine, command) + timeouts)
        print(f"\nMarkdown written to {args.report_md}")
    return 1 if broken(results) else 0


def broken(results: Results) -> list[str]:
    """What went wrong rather than slow (failed requests or cycles, a sweep that left stock unreturned):
    the exit status says so, so that a smoke run fails on it. Missed targets are only reported."""
    problems = [f"{name}: {samples.failures}" for name, samples in results.configs.items() if samples.failures]
    problems += [f"the {s.broker} sweep left stock unreturned" for s in results.sweeps if not s.stock_returned]
    problems += results.timeouts.problems() if results.timeouts is not None else []
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
