"""The monitor's reads: per operation over a recent window, its rate, errors, refusals and duration percentiles.

An operation is a span name among the spans that mean work of the shop: where a process's part of a
trace begins (HTTP routes, gRPC methods, a close task's ``close_unpaid_order``) and the INTERNAL spans
under them (``create_order`` and its steps, ``pay_order``, ``cancel_order``). Database client spans are
left out: their names are SQL verbs, not operations.

Bounded cost: one query reads four narrow columns (name, duration, start, error) of the window's rows,
at most ``MAX_ROWS`` of them; percentiles and the per-bucket chart series are computed from those in
Python. Past ``MAX_ROWS`` the percentiles come from the rows read and one aggregate query keeps the
counts exact. Refusals (``mall.refusal.code`` in a span's attributes) are one more query over the
window's INTERNAL spans.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum

from mall.telemetry.names import REFUSAL_CODE
from traces.models import TraceSpan

WINDOWS = (15 * 60, 3600, 24 * 3600)  # the page's choices, seconds
DEFAULT_WINDOW = 3600
MIN_WINDOW, MAX_WINDOW = 60, 24 * 3600  # the store keeps 24 hours at most
MAX_ROWS = 250_000  # the most span rows one monitor read fetches (the store keeps 200,000 by default)
BUCKETS = 30  # points of each operation's latency-over-time chart
HISTORY_WINDOW = 3600  # the trace page compares each span with the last hour of its operation
REFUSAL_FIELD = "refusal_code"  # a stored column of the refusal code, when the store's model has one


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Return the nearest-rank ``p``-th percentile of values sorted ascending (None when there are none).

    Nearest rank: the smallest value with at least ``p`` percent of the values at or below it, so the
    answer is always a duration that was measured."""
    if not ordered:
        return None
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def percentiles_ms(durations_ns: Iterable[int]) -> dict[str, float | None]:
    """Return p50/p95/p99 in milliseconds of durations in nanoseconds (in any order)."""
    ordered = sorted(durations_ns)
    return {f"p{p}_ms": _ms(percentile(ordered, p)) for p in (50, 95, 99)}


def _ms(value_ns: float | None) -> float | None:
    return None if value_ns is None else round(value_ns / 1e6, 3)


def _now_ns() -> int:
    return time.time_ns()


def _operation_spans(since_ns: int):
    return TraceSpan.objects.filter(start_ns__gte=since_ns).filter(Q(entry=True) | Q(kind="INTERNAL"))


def _has_refusal() -> Q:
    fields = {f.name for f in TraceSpan._meta.get_fields()}
    if REFUSAL_FIELD in fields:
        return ~Q(**{REFUSAL_FIELD: ""})
    return Q(detail__attributes__has_key=REFUSAL_CODE)


def _refusals(since_ns: int) -> dict[str, int]:
    """Refused spans per name; an entry span (an HTTP route) counts when its trace has a refused span."""
    refused = TraceSpan.objects.filter(start_ns__gte=since_ns, kind="INTERNAL", error=False).filter(_has_refusal())
    counts = {row["name"]: row["n"] for row in refused.values("name").annotate(n=Count("id"))}
    if counts:
        roots = TraceSpan.objects.filter(
            start_ns__gte=since_ns, entry=True, error=False, trace_id__in=refused.values("trace_id")
        ).exclude(kind="INTERNAL")
        for row in roots.values("name").annotate(n=Count("id")):
            counts[row["name"]] = counts.get(row["name"], 0) + row["n"]
    return counts


@dataclass
class Operation:
    """One operation's figures over the window (``as_json`` is the contract's shape)."""

    name: str
    count: int = 0
    errors: int = 0
    refusals: int = 0
    durations: list[int] = field(default_factory=list, repr=False)  # ns, as read (a sample past MAX_ROWS)
    starts: list[int] = field(default_factory=list, repr=False)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    per_minute: float = 0.0
    series: list[dict] = field(default_factory=list)  # per bucket: {"start_ns", "count", "p50_ms", "p95_ms"}

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "count": self.count,
            "errors": self.errors,
            "refusals": self.refusals,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "per_minute": self.per_minute,
        }


@dataclass
class Monitor:
    """The monitor over one window: its operations by name, and whether percentiles come from a sample."""

    window: int
    since_ns: int
    until_ns: int
    operations: list[Operation]
    sampled: bool = False

    def as_json(self) -> dict:
        return {"window": self.window, "operations": [operation.as_json() for operation in self.operations]}


def monitor(*, window: int = DEFAULT_WINDOW, now_ns: int | None = None, buckets: int = BUCKETS) -> Monitor:
    """Read the operations of the last ``window`` seconds: counts, errors, refusals, percentiles, chart series."""
    until = _now_ns() if now_ns is None else now_ns
    since = until - window * 1_000_000_000
    rows = list(_operation_spans(since).values_list("name", "duration_ns", "start_ns", "error")[: MAX_ROWS + 1])
    sampled = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    operations: dict[str, Operation] = {}
    for name, duration, start, error in rows:
        operation = operations.get(name)
        if operation is None:
            operation = operations[name] = Operation(name)
        operation.count += 1
        operation.errors += error
        operation.durations.append(duration)
        operation.starts.append(start)
    if sampled:  # exact counts all the same
        for row in _operation_spans(since).values("name").annotate(n=Count("id"), e=Sum("error")):
            operation = operations.setdefault(row["name"], Operation(row["name"]))
            operation.count, operation.errors = row["n"], int(row["e"] or 0)
    for name, refusals in _refusals(since).items():
        if name in operations:
            operations[name].refusals = refusals
    bucket_ns = max(window * 1_000_000_000 // buckets, 1)
    for operation in operations.values():
        operation.__dict__.update(percentiles_ms(operation.durations))
        operation.per_minute = round(operation.count / (window / 60), 3)
        by_bucket: dict[int, list[int]] = {}
        for start, duration in zip(operation.starts, operation.durations, strict=True):
            by_bucket.setdefault(min(max((start - since) // bucket_ns, 0), buckets - 1), []).append(duration)
        operation.series = []
        for index in range(buckets):
            ordered = sorted(by_bucket.get(index, ()))
            operation.series.append(
                {
                    "start_ns": since + index * bucket_ns,
                    "count": len(ordered),
                    "p50_ms": _ms(percentile(ordered, 50)),
                    "p95_ms": _ms(percentile(ordered, 95)),
                }
            )
        operation.durations, operation.starts = [], []  # read once; not kept with the answer
    return Monitor(
        window=window,
        since_ns=since,
        until_ns=until,
        operations=sorted(operations.values(), key=lambda operation: operation.name),
        sampled=sampled,
    )


def recent_percentiles(
    names: Iterable[str], *, window: int = HISTORY_WINDOW, now_ns: int | None = None, other_than: str = ""
) -> dict:
    """Return {name: {"count", "p50_ms", "p95_ms", "p99_ms"}} over the last ``window`` seconds, in one query.

    ``other_than``: a trace id whose spans are left out (a span is compared with the others, not itself)."""
    names = sorted(set(names))
    if not names:
        return {}
    until = _now_ns() if now_ns is None else now_ns
    since = until - window * 1_000_000_000
    durations: dict[str, list[int]] = {}
    rows = TraceSpan.objects.filter(name__in=names, start_ns__gte=since, start_ns__lte=until)
    if other_than:
        rows = rows.exclude(trace_id=other_than)
    for name, duration in rows.values_list("name", "duration_ns")[:MAX_ROWS]:
        durations.setdefault(name, []).append(duration)
    return {name: {"count": len(values), **percentiles_ms(values)} for name, values in durations.items()}
