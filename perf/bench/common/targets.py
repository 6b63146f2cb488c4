"""The bench's targets, defined once: ``perf/bench/run.py --help`` and its report, perf/bench/timeout/run.py's
table and the plots all read them (docs/PERFORMANCE.md explains each)."""

from __future__ import annotations

import operator
from dataclasses import dataclass

_RELATIONS = {"≥": operator.ge, "≤": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Target:
    """A figure is on target when ``figure <relation> bound``; shown as e.g. "≥ 0.85" or "< 5 %"."""

    relation: str  # "≥", "≤" or "<"
    bound: float
    digits: int = 2
    unit: str = ""  # after the number, e.g. " orders/s"; "%": the bound is a share, shown in per cent

    def met(self, figure: float) -> bool:
        return _RELATIONS[self.relation](figure, self.bound)

    def __str__(self) -> str:
        if self.unit == "%":
            return f"{self.relation} {self.bound * 100:.{self.digits}f} %"
        return f"{self.relation} {self.bound:.{self.digits}f}{self.unit}"


# perf/bench/run.py: throughput ratios (MariaDB, 8 clients, 2 gunicorn workers).
TRACING = Target("≥", 0.85)  # 100 % sampling ÷ untraced
SAMPLED_10 = Target("≥", 0.95)  # 10 % parent-based sampling ÷ untraced
ALWAYS_OFF = Target("≥", 0.97)  # always_off sampler ÷ untraced
HOT = Target("≥", 0.90)  # every client buying one goods ÷ each its own
FLOOR = Target("≥", 0.35)  # the traced shop ÷ the raw-driver floor
# perf/bench/run.py: statements per checkout (equal for 1, 10 and 50 lines, and at most this), sweep, memory.
STATEMENTS = Target("≤", 12, digits=0)
SWEEP = Target("≥", 500, digits=0, unit=" orders/s")
RSS_GROWTH = Target("<", 0.05, digits=0, unit="%")
# perf/bench/timeout/run.py: the payment timeout at scale.
CLOSES = Target("≥", 500, digits=0, unit=" closes/s")  # a burst of due orders
CLOSE_LAG_P99 = Target("≤", 35, digits=0, unit=" s")  # after the deadline, steady stream
SCHEDULER_PASS_AT_1M = Target("≤", 10, digits=0, unit=" ms")  # with a million pending schedules


def summary() -> str:
    """One line of every perf/bench/run.py target, for its ``--help``."""
    return (
        f"Targets (MariaDB, 8 clients, 2 workers): ÷ untraced: 100 % sampling {TRACING}, 10 % {SAMPLED_10}, "
        f"always_off {ALWAYS_OFF}; hot ÷ distinct {HOT}, shop ÷ floor {FLOOR}, statements per checkout equal for "
        f"1/10/50 lines and {STATEMENTS}, sweep {SWEEP}, worker RSS growth {RSS_GROWTH}."
    )
