"""Benchmark of the mall shop: tracing cost, hot item, statement count, raw-driver floor, timeout sweep, memory.

    python bench/run.py                                   # SQLite, a temporary database
    python bench/run.py --database-url mysql://root@127.0.0.1:3306/mall_bench
    python bench/run.py --quick                           # smoke-sized counts (CI): checks it runs, not timing

It creates (drops first) and migrates its own database, whose name must contain "bench", seeds it, starts
the shop under gunicorn and drives it over HTTP with concurrent clients, alternating the configurations
over several rounds so that drift on a shared machine hits all of them alike. Ratios are printed first
(median over rounds of the per-round ratio, with the range), absolute figures second. See
docs/PERFORMANCE.md for what each figure means and the latest results.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python bench/run.py` from anywhere

PAY_TIMEOUT = 7 * 24 * 3600  # no checkout of the bench ever becomes overdue on its own
STOCK = 1_000_000_000

TARGETS = {
    "tracing": 0.85,  # 100 % sampling
    "sampled_10": 0.95,
    "always_off": 0.97,
    "hot": 0.90,
    "floor": 0.35,
    "statements": 12,
    "sweep": 500.0,
    "rss_growth": 0.05,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description=__doc__.split("\n\n")[0],
        epilog="Targets (MariaDB, 8 clients, 2 workers): ÷ untraced: 100 %% sampling ≥ 0.85, 10 %% ≥ 0.95, "
        "always_off ≥ 0.97; hot ÷ distinct ≥ 0.90, "
        "shop ÷ floor ≥ 0.35, statements per checkout equal for 1/10/50 lines and ≤ 12, sweep ≥ 500 orders/s, "
        "worker RSS growth < 5%.",
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
        help="parts to leave out: tracing, curve, store, hot, floor, statements, sweep, redis, memory, timeout",
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
    return args


def _database_name(url: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return Path(parsed.path).name if url.startswith("sqlite") else parsed.path.lstrip("/")


def shop_environment(args: argparse.Namespace) -> dict[str, str]:
    """Environment of every shop process: production settings over plain HTTP, telemetry off until chosen."""
    inherited = ("OTEL_", "DJANGO_", "GUNICORN_", "CHECKOUT_", "MALL_")  # the bench decides these
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(
        DATABASE_URL=args.database_url,
        DJANGO_SETTINGS_MODULE="mall.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_DEBUG="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        ORDER_PAY_TIMEOUT=str(PAY_TIMEOUT),
        CHECKOUT_THROTTLE_RATE="off",  # each client checks out hundreds of times a minute by design
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    return env


def tracing_on(env: dict[str, str], endpoint: str, protocol: str, extra: list[str] = ()) -> dict[str, str]:
    return {
        **env,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        # Under load the processor exports whenever 512 spans are queued; its idle flush (5 s by default)
        # only decides how soon a batch's tail arrives, which the bench waits for between batches.
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        **dict(item.split("=", 1) for item in extra),  # experiments override the above
    }


def tracing_off(env: dict[str, str]) -> dict[str, str]:
    return {**env, "OTEL_SDK_DISABLED": "true"}


# The sampling curve between "tracing off" (untraced) and "tracing on" (100 %): part → (sampler, its argument,
# the fraction of traces kept). Each is its own shop, exporting like "tracing on", alternated like the others.
SAMPLED_PARTS = {
    "always_off distinct": ("always_off", "", 0.0),
    "1 % sampled distinct": ("parentbased_traceidratio", "0.01", 0.01),
    "10 % sampled distinct": ("parentbased_traceidratio", "0.1", 0.1),
}


def sampled(env: dict[str, str], sampler: str, argument: str) -> dict[str, str]:
    return {**env, "OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": argument}


# Tracing on (exporting like "tracing on") and the built-in trace store on: its own cost is this ÷ tracing on.
STORE_PART = "tracing on+store distinct"


def with_trace_store(env: dict[str, str]) -> dict[str, str]:
    return {**env, "MALL_TRACE_STORE": "on"}


# --------------------------------------------------------------------------- database


def recreate_database(url: str) -> None:
    name = _database_name(url)
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: the bench database's name must contain 'bench'")
    if url.startswith("sqlite"):
        from urllib.parse import urlparse

        path = Path(urlparse(url).path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from urllib.parse import urlparse

    import MySQLdb

    parsed = urlparse(url)
    connection = MySQLdb.connect(
        host=parsed.hostname or "127.0.0.1", port=parsed.port or 3306, user=parsed.username or "root",
        password=parsed.password or "",
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    connection.close()


@dataclass
class Seed:
    buyers: list  # (user, token) per client: the HTTP clients
    floor_buyers: list  # (user, token) per client: the floor's
    distinct_goods: list  # one goods per client
    hot_goods: object


def seed(clients: int) -> Seed:
    from bench.statements import new_buyer, new_goods

    return Seed(
        buyers=[new_buyer(prefix="client") for _ in range(clients)],
        floor_buyers=[new_buyer(prefix="floor") for _ in range(clients)],
        distinct_goods=[new_goods(stock=STOCK, prefix="distinct") for _ in range(clients)],
        hot_goods=new_goods(stock=STOCK, prefix="hot"),
    )


# --------------------------------------------------------------------------- measurements


@dataclass
class Samples:
    """Per-round results of one configuration."""

    per_second: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    def add(self, result) -> None:
        self.per_second.append(result.per_second)
        if getattr(result, "errors", 0):  # the floor's failed cycles
            self.failures["floor cycle failed"] = self.failures.get("floor cycle failed", 0) + result.errors
        if hasattr(result, "percentile"):
            self.p50.append(result.percentile(0.50))
            self.p99.append(result.percentile(0.99))
            for what, count in result.failures.items():
                self.failures[what] = self.failures.get(what, 0) + count


@dataclass
class Results:
    configs: dict[str, Samples] = field(default_factory=dict)
    spans_per_cycle: list[float] = field(default_factory=list)
    statement_counts: list = field(default_factory=list)
    floor_statements: int = 0
    lock_hold: object = None
    store_cost: object = None  # bench.store.StoreCost
    sweeps: list = field(default_factory=list)
    timeouts: object = None  # bench.timeout.TimeoutResults
    memory: list[list[tuple[int, int]]] = field(default_factory=list)  # per step, per worker: (RSS, peak) KiB
    seconds: float = 0.0

    def samples(self, name: str) -> Samples:
        return self.configs.setdefault(name, Samples())


def ratio_summary(numerator: list[float], denominator: list[float]) -> tuple[float, float, float] | None:
    ratios = [a / b for a, b in zip(numerator, denominator, strict=False) if b]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def buyers_of(seed_data: Seed, *, hot: bool):
    from bench.load import Buyer

    return [
        Buyer(token=token, goods_id=(seed_data.hot_goods if hot else goods).pk)
        for (_, token), goods in zip(seed_data.buyers, seed_data.distinct_goods, strict=True)
    ]


def _report_batch(label: str, result) -> None:
    print(
        f"  {label:<22} {result.per_second:7.1f} cycles/s  p50 {result.percentile(0.5) * 1000:6.1f} ms"
        f"  p99 {result.percentile(0.99) * 1000:6.1f} ms  failures {sum(result.failures.values())}",
        flush=True,
    )


def _settle(sink, expected: float, *, timeout: float = 3.0) -> None:
    """Wait until the traced server exported what it buffered (its BatchSpanProcessor flushes every second
    here), so its export work does not run during the next configuration's batch."""
    deadline = time.monotonic() + timeout
    while sink.spans < expected and time.monotonic() < deadline:
        time.sleep(0.1)


def measure_rounds(args, env, sink, seed_data, results, plan, fingerprint) -> None:
    """Both shops (tracing on and off) run side by side; short batches alternate between the configurations,
    reversing their order every round, so that load changes on a shared machine hit all of them alike."""
    from contextlib import ExitStack

    from bench.load import run_batch
    from bench.server import gunicorn

    parts = ["tracing on distinct", "tracing off distinct", *SAMPLED_PARTS, STORE_PART, "tracing on hot", "floor"]
    skipped = {"tracing": ["tracing off distinct"], "curve": list(SAMPLED_PARTS), "store": [STORE_PART],
               "hot": ["tracing on hot"], "floor": ["floor"]}  # fmt: skip
    parts = [part for part in parts if not any(part in skipped.get(k, ()) for k in args.skip)]
    on_env = tracing_on(env, sink.endpoint_for(args.otlp_protocol), args.otlp_protocol, args.traced_env)
    servers = {"on": on_env, "off": tracing_off(env), "store": with_trace_store(on_env)}
    servers |= {part: sampled(on_env, sampler, arg) for part, (sampler, arg, _) in SAMPLED_PARTS.items()}
    server_of = {"tracing off distinct": "off", STORE_PART: "store", **{part: part for part in SAMPLED_PARTS}}
    fraction_of = {part: fraction for part, (_, _, fraction) in SAMPLED_PARTS.items()}
    with ExitStack() as stack:
        urls, warmed = {}, {}
        # The fully traced shops warm up first: their spans alone tell how many a cycle makes.
        for name in sorted(servers, key=lambda name: name not in ("on", "store")):
            if name != "on" and not any(server_of.get(part) == name for part in parts):
                continue
            log = Path(args.log_dir) / f"gunicorn-tracing-{name.split()[0].replace('%', 'pct')}.log"
            urls[name], _ = stack.enter_context(
                gunicorn(env=servers[name], workers=args.workers, threads=args.threads, log_path=log)
            )
            warmed[name] = run_batch(urls[name], buyers_of(seed_data, hot=False), cycles=args.warmup).cycles
            if name == "store" or (name == "on" and STORE_PART not in parts):
                _settle(sink, float("inf"), timeout=2.5)  # the warm-up's spans, to learn how many a cycle makes
                spans_per_cycle = sink.spans / max(warmed["on"] + warmed.get("store", 0), 1)  # both export here
                results.spans_per_cycle.append(spans_per_cycle)
        for number in range(args.rounds):
            print(f"round {number + 1}/{args.rounds}", flush=True)
            for part in parts if number % 2 == 0 else parts[::-1]:
                if part == "floor":
                    measure_floor(args, seed_data, results, plan, fingerprint)
                    continue
                url = urls[server_of.get(part, "on")]
                spans_before = sink.spans
                result = run_batch(url, buyers_of(seed_data, hot=part.endswith("hot")), cycles=args.cycles)
                results.samples(part).add(result)
                _report_batch(part, result)
                # Its export must not run during the next batch (a sampled shop's share is random: roughly).
                fraction = 1.0 if part.startswith("tracing on") else fraction_of.get(part, 0.0)
                if fraction:
                    expected = (0.97 if fraction == 1 else 0.5) * fraction * spans_per_cycle * result.cycles
                    _settle(sink, spans_before + expected)


def measure_floor(args, seed_data, results, plan, fingerprint) -> None:
    from django.conf import settings

    from bench.floor import FloorClient, run_floor

    clients = [
        FloorClient(token=token, user_id=user.pk, goods_id=goods.pk)
        for (user, token), goods in zip(seed_data.floor_buyers, seed_data.distinct_goods, strict=True)
    ]
    result = run_floor(
        database_url=args.database_url, options=settings.DATABASES["default"]["OPTIONS"], plan=plan,
        clients=clients, cycles=args.cycles, fingerprint=fingerprint, pay_timeout=PAY_TIMEOUT,
    )  # fmt: skip
    results.samples("floor").add(result)
    print(f"  {'floor (raw driver)':<22} {result.per_second:7.1f} cycles/s  failures {result.errors}", flush=True)


def measure_memory(args, env, seed_data, results) -> None:
    from bench.load import run_batch
    from bench.server import children, gunicorn, memory_kib

    log = Path(args.log_dir) / "gunicorn-memory.log"
    with gunicorn(env=env, workers=args.workers, threads=args.threads, log_path=log) as (base_url, master):
        run_batch(base_url, buyers_of(seed_data, hot=False), cycles=args.warmup)
        for step in range(3):
            result = run_batch(base_url, buyers_of(seed_data, hot=False), cycles=args.memory_checkouts)
            workers = children(master.pid)
            results.memory.append([memory_kib(pid) for pid in workers])
            rss = ", ".join(f"{now / 1024:.1f} MiB (peak {peak / 1024:.1f})" for now, peak in results.memory[-1])
            print(f"  after {(step + 1) * args.memory_checkouts} checkouts: {rss}  [{result.per_second:.1f}/s]")


def measure_sweep(args, env, results, *, broker: str) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from django_q.models import Schedule

    from bench.server import qcluster
    from bench.statements import new_goods
    from bench.sweep import SweepResult, check_returned, create_overdue_orders, enqueue_sweep, wait_for_task
    from inventory.models import Stock

    env = {**env, "DJANGO_Q_WORKERS": "1"}
    if broker == "redis":
        env["DJANGO_Q_REDIS_URL"] = args.redis_url
        _clear_redis_queue(args.redis_url)
    user = get_user_model().objects.create_user(username=f"sweep-{broker}-{secrets.token_hex(4)}", password=None)
    goods = new_goods(stock=STOCK, prefix=f"sweep-{broker}")
    stock_before = Stock.objects.get(goods=goods).quantity
    # The every-minute safety net (migration orders/0002) would sweep alongside the measured tasks: later.
    Schedule.objects.filter(func="orders.tasks.close_overdue_orders").update(
        next_run=timezone.now() + timedelta(days=1)
    )
    prefix = f"SWEEP{broker.upper()}{secrets.token_hex(3)}"
    began = time.perf_counter()
    create_overdue_orders(count=args.sweep_orders, user=user, goods=goods, prefix=prefix)
    print(f"  created {args.sweep_orders} overdue orders in {time.perf_counter() - began:.1f} s", flush=True)
    log = Path(args.log_dir) / f"qcluster-{broker}.log"
    closed, seconds, tasks = 0, 0.0, 0
    with qcluster(env=env, log_path=log):
        # One sweep task works within a time budget (orders.timeouts.TIME_BUDGET): queue the next
        # one until every overdue order is closed; their run times in the worker add up.
        while closed < args.sweep_orders:
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
        orders=args.sweep_orders,
        closed=closed,
        seconds=seconds,
        tasks=tasks,
        stock_returned=check_returned(goods=goods, stock_before=stock_before, prefix=prefix, count=args.sweep_orders),
    )
    results.sweeps.append(result)
    print(
        f"  sweep ({broker} broker): closed {result.closed} in {result.seconds:.2f} s ({tasks} tasks) = "
        f"{result.per_second:.0f} "
        f"orders/s; stock returned: {result.stock_returned}",
        flush=True,
    )


def measure_timeouts(args, env):
    """The payment timeout section, smaller than ``bench/timeout.py``'s defaults so the whole run stays short:
    a 45 s steady stream, 500 orders for the per-order design, up to 100k pending schedules."""
    from bench.timeout import TimeoutSettings, measure

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


def _clear_redis_queue(url: str) -> None:
    import redis

    client = redis.from_url(url)
    for key in client.scan_iter("django_q:mall:*"):
        client.delete(key)


# --------------------------------------------------------------------------- the run


def prepare(args: argparse.Namespace) -> dict[str, str]:
    """Recreate and migrate the bench database, set this process up on it; the shop processes' environment."""
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    env = shop_environment(args)
    # This process: the same settings, no telemetry, quiet logs (it counts statements and seeds data).
    os.environ.update({**env, "OTEL_SDK_DISABLED": "true", "MALL_LOG_LEVEL": "WARNING"})
    for key in [k for k in os.environ if k.startswith("OTEL_") and k != "OTEL_SDK_DISABLED"]:
        del os.environ[key]

    print(f"database {args.database_url}: recreating, migrating, seeding", flush=True)
    recreate_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def main(argv=None) -> int:
    args = parse_args(argv)
    command = "python bench/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    env = prepare(args)
    seed_data = seed(args.clients)
    results = Results()

    from bench import report
    from bench.floor import check_replay
    from bench.otlp_sink import OtlpSink
    from bench.statements import capture_checkout_cycle, checkout_statement_counts, stock_lock_hold

    if "statements" not in args.skip:
        results.statement_counts = checkout_statement_counts()
        print("statements per checkout: " + report.statement_line(results.statement_counts), flush=True)
    if "hot" not in args.skip:
        results.lock_hold = stock_lock_hold(checkouts=20 if args.quick else 200)
        print(f"stock lock held per checkout (in-process): {report.lock_hold_line(results.lock_hold)}", flush=True)
    cycle = capture_checkout_cycle()
    if "store" not in args.skip:
        from bench.store import store_write_cost

        statements = [s.sql for s in cycle.statements if not s.sql.upper().startswith("BEGIN")]
        results.store_cost = store_write_cost(checkouts=20 if args.quick else 400, statements=statements)
        print(f"trace store, in-process: {report.store_cost_line(results.store_cost, results.lock_hold)}", flush=True)
    plan = check_replay(cycle)
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
                measure_sweep(args, on_env, results, broker=broker)
        if "timeout" not in args.skip:
            print("payment timeout at scale (bench/timeout.py; it runs the full sizes on its own)", flush=True)
            results.timeouts = measure_timeouts(args, on_env)

    results.seconds = time.perf_counter() - started
    machine = report.machine(args)
    print()
    print(report.text(args, results, machine, command))
    if results.timeouts is not None:
        from bench.timeout import markdown as timeout_markdown

        print("\n" + timeout_markdown(results.timeouts))
    if args.plot:
        from bench.plots import draw_all

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
