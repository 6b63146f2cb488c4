"""The bench's output: ratios first, absolute figures second, as text and as Markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
from importlib.metadata import version

from perf.bench.common import targets
from perf.bench.common.results import ratio_summary

UNTRACED = "tracing off distinct"


def statement_line(counts) -> str:
    """e.g. "1/10/50 lines: create_order 11/11/11 (2 of them BEGIN/COMMIT), POST /api/orders/ 13/13/13 (2)"."""
    lines = "/".join(str(count.lines) for count in counts)
    service = "/".join(str(count.service) for count in counts)
    request = "/".join(str(count.request) for count in counts)
    control = max(count.service_control for count in counts)
    request_control = max(count.request_control for count in counts)
    return (
        f"{lines} lines: create_order {service} ({control} of them BEGIN/COMMIT), "
        f"POST /api/orders/ {request} ({request_control})"
    )


def lock_hold_line(hold) -> str:
    if hold.median_ms != hold.median_ms:  # NaN
        return "n/a on SQLite (BEGIN IMMEDIATE locks the database, not rows)"
    return (
        f"median {hold.median_ms:.2f} ms, p90 {hold.p90_ms:.2f} ms (lock → commit; {hold.checkouts} checkouts, "
        f"{hold.cpu_ms:.1f} ms CPU per create_order)"
    )


def store_cost_line(cost, hold=None) -> str:
    line = (
        f"{cost.cpu_us_per_span:.0f} µs CPU per span, {cost.cpu_ms_per_checkout:.2f} ms per checkout "
        f"({cost.spans_per_checkout} spans); a batch of 512 spans writes in {cost.batch_ms_median:.1f} ms "
        f"(max {cost.batch_ms_max:.1f})"
    )
    if hold is not None and hold.cpu_ms == hold.cpu_ms:  # not NaN
        line += f"; a create_order takes {hold.cpu_ms:.1f} ms CPU here"
    return line


def _fmt_range(summary, digits: int = 2) -> str:
    if summary is None:
        return "n/a"
    median, low, high = summary
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def ratio_rows(args, results) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, verdict) rows."""

    def per_second(name):
        return results.configs[name].per_second if name in results.configs else []

    def ratio_row(label: str, numerator: str, denominator: str, target: targets.Target) -> tuple[str, str, str, str]:
        summary = ratio_summary(per_second(numerator), per_second(denominator))
        met = None if summary is None else target.met(summary[0])
        return label, _fmt_range(summary), str(target), _verdict(met)

    rows = [
        ratio_row("always_off ÷ untraced (throughput)", "always_off distinct", UNTRACED, targets.ALWAYS_OFF),
        ratio_row("10 % sampled ÷ untraced (throughput)", "10 % sampled distinct", UNTRACED, targets.SAMPLED_10),
        ratio_row("tracing on (100 %) ÷ untraced (throughput)", "tracing on distinct", UNTRACED, targets.TRACING),
        ratio_row("hot item ÷ distinct items", "tracing on hot", "tracing on distinct", targets.HOT),
        ratio_row("shop (tracing on) ÷ raw-driver floor", "tracing on distinct", "floor", targets.FLOOR),
    ]
    store = ratio_summary(per_second("tracing on+store distinct"), per_second("tracing on distinct"))
    rows.append(("trace store on ÷ off (tracing on, throughput)", _fmt_range(store), "(its own cost)", ""))
    floor_off = ratio_summary(per_second("tracing off distinct"), per_second("floor"))
    rows.append(("shop (tracing off) ÷ raw-driver floor", _fmt_range(floor_off), "(for reference)", ""))
    if results.statement_counts:
        counts = results.statement_counts
        equal = len({c.service for c in counts}) == 1 and len({c.request for c in counts}) == 1
        small = targets.STATEMENTS.met(max(c.service for c in counts))
        verdict = _verdict(equal and small)
        rows.append(("SQL statements per checkout", statement_line(counts), f"equal, {targets.STATEMENTS}", verdict))
    for sweep in results.sweeps:
        rows.append(
            (
                f"timeout sweep, {sweep.broker} broker",
                f"{sweep.per_second:.0f} orders/s",
                str(targets.SWEEP),
                _verdict(targets.SWEEP.met(sweep.per_second) and sweep.stock_returned),
            )
        )
    growth = rss_growth(results)
    if growth is not None:
        rows.append(
            (
                f"worker RSS growth, checkouts {2 * args.memory_checkouts}→{3 * args.memory_checkouts}",
                f"{growth * 100:.1f} %",
                str(targets.RSS_GROWTH),
                _verdict(targets.RSS_GROWTH.met(growth)),
            )
        )
    return rows


# The sampling curve, untraced first: (part, label, fraction of traces kept or None for untraced).
CURVE = (
    ("tracing off distinct", "untraced (OTEL_SDK_DISABLED)", None),
    ("always_off distinct", "always_off", 0.0),
    ("1 % sampled distinct", "1 % parent-based", 0.01),
    ("10 % sampled distinct", "10 % parent-based", 0.1),
    ("tracing on distinct", "100 % parent-based", 1.0),
    ("tracing on+store distinct", "100 % + trace store", 1.0),
)


def curve_rows(results) -> list[tuple[str, str, str, str, str]]:
    """(configuration, throughput, ÷ untraced, checkout p50, p99) for each measured point of the curve."""
    untraced = results.configs.get("tracing off distinct")
    rows = []
    for part, label, _ in CURVE:
        samples = results.configs.get(part)
        if samples is None or not samples.per_second:
            continue
        ratio = ratio_summary(samples.per_second, untraced.per_second) if untraced else None
        rows.append(
            (
                label,
                f"{statistics.median(samples.per_second):.1f}",
                _fmt_range(ratio),
                f"{statistics.median(samples.p50) * 1000:.1f}" if samples.p50 else "n/a",
                f"{statistics.median(samples.p99) * 1000:.1f}" if samples.p99 else "n/a",
            )
        )
    return rows


def rss_growth(results) -> float | None:
    """The largest growth of a worker's RSS between the 2nd and 3rd memory step."""
    if len(results.memory) < 3 or len(results.memory[1]) != len(results.memory[2]):
        return None
    pairs = zip(results.memory[1], results.memory[2], strict=True)
    return max((third[0] - second[0]) / second[0] for second, third in pairs)


def absolute_rows(args, results) -> list[tuple[str, str]]:
    rows = []
    for name, samples in results.configs.items():
        rounds = ", ".join(f"{value:.1f}" for value in samples.per_second)
        line = f"{statistics.median(samples.per_second):.1f} cycles/s (rounds: {rounds})"
        if samples.p50:
            line += (
                f"; checkout p50 {statistics.median(samples.p50) * 1000:.1f} ms,"
                f" p99 {statistics.median(samples.p99) * 1000:.1f} ms"
            )
        if samples.failures:
            line += f"; failures {samples.failures}"
        rows.append((name, line))
    if results.lock_hold is not None:
        rows.append(("stock row lock held per checkout (in-process)", lock_hold_line(results.lock_hold)))
    if results.store_cost is not None:
        rows.append(("trace store writes (in-process)", store_cost_line(results.store_cost, results.lock_hold)))
    if results.spans_per_cycle:
        spans = ", ".join(f"{value:.1f}" for value in results.spans_per_cycle)
        rows.append(("spans received per cycle (tracing on)", spans))
    if results.floor_statements:
        rows.append(("floor: statements per cycle (cart + checkout)", str(results.floor_statements)))
    for sweep in results.sweeps:
        rows.append(
            (
                f"timeout sweep, {sweep.broker} broker",
                f"{sweep.closed} of {sweep.orders} closed by {sweep.tasks} sweep task(s) in {sweep.seconds:.2f} s; "
                f"stock and ledger returned: {sweep.stock_returned}",
            )
        )
    for step, workers in enumerate(results.memory, start=1):
        memory = "; ".join(f"RSS {now / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB" for now, peak in workers)
        rows.append((f"gunicorn workers after {step * args.memory_checkouts} checkouts", memory))
    rows.append(("bench run time", f"{results.seconds:.0f} s"))
    return rows


def machine(args) -> list[tuple[str, str]]:
    cpu, memory = "?", "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
        with open("/proc/meminfo") as meminfo:
            kib = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
        memory = f"{int(kib) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    rows = [
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("memory", memory),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        (
            "packages",
            ", ".join(
                f"{name} {version(name)}"
                for name in ("Django", "djangorestframework", "gunicorn", "opentelemetry-sdk", "django-q2")
            ),
        ),
        ("database", database_version()),
    ]
    if "sweep" not in args.skip and "redis" not in args.skip:
        rows.append(("Redis", redis_version(args.redis_url)))
    rows.append(("load average at the end", ", ".join(f"{value:.2f}" for value in os.getloadavg())))
    rows.append(
        (
            "shop",
            f"gunicorn {args.workers} workers × {args.threads} threads; {args.clients} clients; "
            f"{args.rounds} rounds × {args.cycles} cycles per batch; OTLP {args.otlp_protocol}",
        )
    )
    if args.traced_env:
        rows.append(("extra environment of the traced shop", ", ".join(args.traced_env)))
    return rows


def database_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("select sqlite_version()")
            return f"SQLite {cursor.fetchone()[0]}"
        cursor.execute("select version()")
        return f"MariaDB/MySQL {cursor.fetchone()[0]}"


def redis_version(url: str) -> str:
    try:
        import redis

        return str(redis.from_url(url).info("server")["redis_version"])
    except Exception as exc:  # only a label in the report
        return f"? ({exc})"


def text(args, results, machine_rows, command: str) -> str:
    out = ["== ratios (median of the per-round ratios, range in parentheses) =="]
    for figure, value, target, verdict in ratio_rows(args, results):
        out.append(f"{figure:<46} {value:<34} target {target:<16} {verdict}")
    out.append("")
    out.append("== sampling curve (cycles/s, ÷ untraced per round, checkout p50/p99 ms) ==")
    for label, per_second, ratio, p50, p99 in curve_rows(results):
        out.append(f"{label:<30} {per_second:>8} cycles/s  {ratio:<20} p50 {p50:>6}  p99 {p99:>6}")
    out.append("")
    out.append("== absolute figures ==")
    for figure, value in absolute_rows(args, results):
        out.append(f"{figure:<46} {value}")
    out.append("")
    out.append("== machine ==")
    for figure, value in machine_rows:
        out.append(f"{figure:<46} {value}")
    out.append(f"{'command':<46} {command}")
    return "\n".join(out)


def markdown(args, results, machine_rows, command: str) -> str:
    out = ["| ratio | value (median, range) | target | |", "| --- | --- | --- | --- |"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in ratio_rows(args, results)]
    out += ["", "| sampling | cycles/s | ÷ untraced (median, range) | checkout p50 ms | p99 ms |"]
    out += ["| --- | --- | --- | --- | --- |"]
    out += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in curve_rows(results)]
    out += ["", "| absolute | value |", "| --- | --- |"]
    out += [f"| {a} | {b} |" for a, b in absolute_rows(args, results)]
    out += ["", "| machine | |", "| --- | --- |"]
    out += [f"| {a} | {b} |" for a, b in machine_rows]
    out.append(f"| command | `{command}` |")
    return "\n".join(out) + "\n"
