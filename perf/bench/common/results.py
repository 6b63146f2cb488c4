"""What a perf/bench/run.py run measured: per-round samples of each configuration and the other parts' figures."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Samples:
    """Per-round results of one configuration."""

    per_second: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    def add_batch(self, result) -> None:
        """A batch of HTTP checkout cycles (``perf.loadgen.cycles.BatchResult``)."""
        self.per_second.append(result.per_second)
        self.p50.append(result.percentile(0.50))
        self.p99.append(result.percentile(0.99))
        for what, count in result.failures.items():
            self._failed(what, count)

    def add_floor(self, result) -> None:
        """A batch of the raw-driver floor (``bench.floor.FloorResult``)."""
        self.per_second.append(result.per_second)
        if result.errors:
            self._failed("floor cycle failed", result.errors)

    def _failed(self, what: str, count: int) -> None:
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
    timeouts: object = None  # bench.timeout_results.TimeoutResults
    memory: list[list[tuple[int, int]]] = field(default_factory=list)  # per step, per worker: (RSS, peak) KiB
    seconds: float = 0.0

    def samples(self, name: str) -> Samples:
        return self.configs.setdefault(name, Samples())


def ratio_summary(numerator: list[float], denominator: list[float]) -> tuple[float, float, float] | None:
    """Median, lowest and highest of the per-round ratios; None without a round."""
    ratios = [a / b for a, b in zip(numerator, denominator, strict=False) if b]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)
