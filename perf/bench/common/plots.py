"""The bench's pictures (``perf/bench/run.py --plot``): PNGs for docs/PERFORMANCE.md, drawn headless (Agg)."""

from __future__ import annotations

import statistics
from pathlib import Path

from perf.bench.common import targets
from perf.bench.common.results import ratio_summary

# File names docs/PERFORMANCE.md shows.
CURVE_PNG = "tracing-curve.png"
STATEMENTS_PNG = "statements-per-checkout.png"
CLOSE_LAG_PNG = "timeout-close-lag.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: CI and servers
    import matplotlib.pyplot as plt

    return plt


def plot_curve(results, directory: Path) -> Path | None:
    """Throughput and checkout p99 over the sampled fraction, untraced as the reference line."""
    from perf.bench.common.report import CURVE

    untraced = results.configs.get("tracing off distinct")
    points = [
        (fraction, results.configs[part])
        for part, _, fraction in CURVE
        if fraction is not None and "store" not in part and part in results.configs
    ]
    if untraced is None or not points:
        return None
    plt = _pyplot()
    figure, (throughput, p99) = plt.subplots(1, 2, figsize=(10, 4))
    ratios = [ratio_summary(samples.per_second, untraced.per_second) for _, samples in points]
    # always_off (0) and 1 % would collide on a log axis: a symmetric-log axis keeps 0 and spreads the rest.
    xs = [fraction * 100 for fraction, _ in points]
    throughput.errorbar(
        xs, [r[0] for r in ratios], yerr=[[r[0] - r[1] for r in ratios], [r[2] - r[0] for r in ratios]],
        marker="o", capsize=3, label="instrumented (median, range of rounds)",
    )  # fmt: skip
    throughput.axhline(1.0, color="grey", linestyle="--", label="untraced")
    throughput.set_ylabel("throughput ÷ untraced (per round)")
    p99.plot(xs, [statistics.median(s.p99) * 1000 for _, s in points], marker="o", label="instrumented")
    p99.axhline(statistics.median(untraced.p99) * 1000, color="grey", linestyle="--", label="untraced")
    p99.set_ylabel("checkout p99 (ms, median of rounds)")
    store = results.configs.get("tracing on+store distinct")
    if store is not None:
        store_ratio = ratio_summary(store.per_second, untraced.per_second)
        throughput.plot([100], [store_ratio[0]], "s", color="tab:red", label="100 % + trace store")
        p99.plot([100], [statistics.median(store.p99) * 1000], "s", color="tab:red", label="100 % + trace store")
    for axis in (throughput, p99):
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xticks([0, 1, 10, 100], ["always_off", "1 %", "10 %", "100 %"])
        axis.set_xlabel("parent-based sampling")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(loc="lower left", fontsize="small")
    figure.suptitle("Tracing cost over sampling (median of the rounds)")
    return _save(plt, figure, directory / CURVE_PNG)


def plot_statements(counts, directory: Path) -> Path | None:
    """SQL statements of one checkout per cart size: create_order alone and the whole POST /api/orders/."""
    if not counts:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    lines = [count.lines for count in counts]
    axis.plot(lines, [count.service for count in counts], marker="o", label="create_order")
    axis.plot(lines, [count.request for count in counts], marker="s", label="POST /api/orders/")
    axis.axhline(
        targets.STATEMENTS.bound, color="grey", linestyle="--", label=f"target: {targets.STATEMENTS} (create_order)"
    )
    axis.set_xlabel("lines in the cart")
    axis.set_ylabel("SQL statements per checkout")
    axis.set_ylim(0, max(count.request for count in counts) + 4)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.suptitle("Statements per checkout do not grow with the cart")
    return _save(plt, figure, directory / STATEMENTS_PNG)


def plot_close_lag(timeouts, directory: Path) -> Path | None:
    """How late overdue orders close under a steady stream (perf/bench/timeout/run.py's steady runs, one line per
    broker: the share of orders closed within x seconds of their deadline); None without such runs."""
    steadies = [steady for steady in getattr(timeouts, "steadies", []) if steady.lags]
    if not steadies:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for steady in steadies:
        lags = sorted(steady.lags)
        shares = [(index + 1) / len(lags) for index in range(len(lags))]
        axis.plot(lags, shares, label=f"{steady.broker} broker, {steady.rate:.0f} unpaid orders/s")
    lag = targets.CLOSE_LAG_P99
    axis.axvline(lag.bound, color="grey", linestyle="--", label=f"target p99: {lag.bound:.0f}{lag.unit}")
    axis.set_xlabel("close lag after the deadline (s)")
    axis.set_ylabel("share of orders closed")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.suptitle("Payment timeout: how late overdue orders close")
    return _save(plt, figure, directory / CLOSE_LAG_PNG)


def _save(plt, figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def draw_all(results, directory: Path) -> list[str]:
    """Draw every picture there is data for; returns one line per picture (written or skipped, and why)."""
    notes = []
    for name, drawn in (
        ("tracing curve", plot_curve(results, directory)),
        ("statements per cart size", plot_statements(results.statement_counts, directory)),
        ("timeout close lag", plot_close_lag(results.timeouts, directory)),
    ):
        notes.append(f"plot {name}: {drawn}" if drawn else f"plot {name}: skipped (no data in this run)")
    return notes
