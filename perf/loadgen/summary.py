"""The figures of a load run: counts by outcome, checkout latency, throughput and the traces worth opening."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from perf.loadgen.plan import OrderOutcome
from perf.loadgen.stats import percentile

SAMPLE_TRACES = 5
THROTTLED = "throttled"  # the code of the shop's 429 (CHECKOUT_THROTTLE_RATE)
THROTTLED_SHARE_FAILS_RUN = 0.5  # more than this share of orders throttled: the run measured the throttle
LATENCY_PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def _sample(outcomes: list[OrderOutcome]) -> list[OrderOutcome]:
    """Failures first, then placed orders, then refusals (throttled last): the traces worth opening."""
    ranked = sorted(
        (outcome for outcome in outcomes if outcome.trace_id),
        key=lambda outcome: (
            not outcome.failure,
            bool(outcome.rejected),
            outcome.rejected == THROTTLED,
            outcome.index,
        ),
    )
    return ranked[:SAMPLE_TRACES]


def _counts(values) -> dict[str, int]:
    """Occurrences of each non-empty value, most frequent first."""
    return dict(Counter(value for value in values if value).most_common())


def _rounded(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else round(milliseconds, 1)


@dataclass
class LoadSummary:
    mode: str
    url: str | None
    seed: int
    outcomes: list[OrderOutcome]
    elapsed: float
    trace_url: Callable[[str], str | None]  # where a trace opens; None: nowhere (no link is printed)
    figures: dict = field(init=False)

    def __post_init__(self):
        outcomes = self.outcomes
        latencies_ms = [o.checkout_seconds * 1000 for o in outcomes if o.checkout_seconds is not None]
        placed = sum(o.placed for o in outcomes)
        self.figures = {
            "mode": self.mode,
            "url": self.url,
            "seed": self.seed,
            "orders": len(outcomes),
            "placed": placed,
            "rejected": _counts(o.rejected for o in outcomes if not o.failure),
            "failed": sum(bool(o.failure) for o in outcomes),
            "failures": _counts(o.failure for o in outcomes),
            "paid": sum(o.paid for o in outcomes),
            "pay_rejected": _counts(o.pay_rejected for o in outcomes),
            "latency_ms": {name: _rounded(percentile(latencies_ms, share)) for name, share in LATENCY_PERCENTILES},
            "elapsed_s": round(self.elapsed, 3),
            "orders_per_s": round(placed / self.elapsed, 2) if self.elapsed > 0 else 0.0,
            "sample_traces": [
                {"trace_id": o.trace_id, "outcome": o.label, "url": self.trace_url(o.trace_id)}
                for o in _sample(outcomes)
            ],
        }

    @property
    def failed(self) -> int:
        return self.figures["failed"]

    @property
    def throttled(self) -> int:
        return self.figures["rejected"].get(THROTTLED, 0)

    @property
    def mostly_throttled(self) -> bool:
        """More than half of the orders were throttled: the figures describe the throttle, not the shop."""
        return self.throttled > THROTTLED_SHARE_FAILS_RUN * self.figures["orders"]
