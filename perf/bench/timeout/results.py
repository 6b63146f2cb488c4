"""The payment timeout bench's settings, results and report table (perf/bench/timeout/run.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from perf.bench.common import targets
from perf.bench.timeout.scheduler_pass import PassTime
from perf.loadgen.stats import percentile


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

    def lag(self, share: float) -> float:
        """Close lag (seconds after the deadline) at ``share``; NaN without a closed order."""
        return percentile(self.lags, share, default=float("nan"))


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
                str(targets.CLOSES),
            )
        )
    for s in results.steadies:
        out.append(
            (
                f"steady, {s.broker} broker: {s.placed} unpaid orders at {s.rate:.1f}/s",
                f"close lag after the deadline p50 {s.lag(0.5):.1f} s, p99 {s.lag(0.99):.1f} s, "
                f"max {max(s.lags, default=float('nan')):.1f} s; {s.closed} closed",
                f"p99 {targets.CLOSE_LAG_P99}",
            )
        )
    for p in results.passes:
        out.append(
            (
                f"scheduler pass, {p.pending:,} pending schedules",
                f"whole pass {p.indexed_ms:.2f} ms, its locking read {p.query_indexed_ms:.2f} ms with the index on "
                f"next_run; without: {p.unindexed_ms:.1f} ms, read {p.query_unindexed_ms:.1f} ms",
                f"{targets.SCHEDULER_PASS_AT_1M} at 1M",
            )
        )
    return out


def markdown(results: TimeoutResults) -> str:
    lines = ["| figure | value | target |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(results)]
    return "\n".join(lines) + "\n"
