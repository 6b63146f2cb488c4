"""The one percentile definition of the load tools, the bench and the soak."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

Default = TypeVar("Default")


def percentile(values: Iterable[float], share: float, *, default: Default = None) -> float | Default:
    """Nearest-rank percentile (``share`` in 0..1): the smallest value with at least that share of the values at or
    below it. ``default`` when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return default
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
