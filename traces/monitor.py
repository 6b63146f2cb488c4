"""The monitor's reads: per operation over a recent window, its rate, errors, refusals and duration percentiles.

An operation is a span name among the spans that mean work of the shop: where a process's part of a
trace begins (HTTP routes, gRPC methods, a close task's ``close_unpaid_order``) and the INTERNAL spans
under them (``create_order`` and its steps, ``pay_order``, ``cancel_order``). Database client spans are
left out: their names are SQL verbs, not operations.

Bounded cost: one query reads six narrow columns of the window's rows (name, duration, start, error,
and the trace id of refused spans and of the entry spans that may count as refused), at most
``MAX_ROWS`` of them, through the cursor (the ORM's per-row conversion would cost more than the query),
in no order; Python groups them by name and sorts each name's durations as integers for the percentiles
and the per-bucket chart series. Past ``MAX_ROWS`` the percentiles come from the rows read and aggregate
queries keep the counts and refusals exact. Refusals are ``mall.refusal.code`` on an INTERNAL span
without an error (the stored ``refusal_code``); an entry span without an error counts as refused when
its trace has one. Figures: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Case, CharField, Count, F, Q, Sum, When

from traces.models import TraceSpan

WINDOWS = (15 * 60, 3600, 24 * 3600)  # the page's choices, seconds
DEFAULT_WINDOW = 3600
MIN_WINDOW, MAX_WINDOW = 60, 24 * 3600  # the store keeps 24 hours at most
MAX_ROWS = 250_000  # the most span rows one monitor read fetches (the store keeps 200,000 by default)
BUCKETS = 30  # points of each operation's latency-over-time chart
HISTORY_WINDOW = 3600  # the trace page compares each span with the last hour of its operation
REFUSAL_FIELD = "refusal_code"  # a stored column of the refusal code, when the store's model has one
IN_CHUNK = 500  # trace ids in one IN (...) list


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


def _fetch(query) -> list[tuple]:
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _in_window(since_ns: int | None):
    """The stored spans since ``since_ns``; None: all of them."""
    return TraceSpan.objects.all() if since_ns is None else TraceSpan.objects.filter(start_ns__gte=since_ns)


def _read(since_ns: int | None, limit: int) -> list[tuple]:
    """Read (name, duration_ns, start_ns, error, trace id if refused, trace id if a refusable entry) of at
    most ``limit`` operation spans since ``since_ns`` (None: all stored), in no order.

    Unordered: MariaDB's filesort of the window's rows by (name, duration) cost more than the rest of the
    monitor; Python sorts each name's durations as plain integers instead."""
    spans = _in_window(since_ns).filter(Q(entry=True) | Q(kind="INTERNAL"))
    columns = ("name", "duration_ns", "start_ns", "error")
    spans = spans.annotate(refused=_trace_if(REFUSED), refusable=_trace_if(REFUSABLE_ENTRY))
    return _fetch(spans.order_by().values_list(*columns, "refused", "refusable")[:limit])


def _trace_if(condition: Q):
    return Case(When(condition, then=F("trace_id")), default=None, output_field=CharField())


# A refused operation span: ``mall.refusal.code`` on an INTERNAL span without an error.
REFUSED = Q(kind="INTERNAL", error=False) & ~Q(**{REFUSAL_FIELD: ""})
# An entry span (HTTP route, gRPC method) without an error: it counts as refused when its trace has a refused span.
REFUSABLE_ENTRY = Q(entry=True, error=False) & ~Q(kind="INTERNAL")


def _refused_entries(since_ns: int | None, trace_ids: set[str]) -> dict[str, int]:
    """Entry spans (HTTP routes, gRPC methods) without an error whose trace has a refused span, per name."""
    counts: dict[str, int] = {}
    ordered = sorted(trace_ids)
    for index in range(0, len(ordered), IN_CHUNK):
        roots = _in_window(since_ns).filter(REFUSABLE_ENTRY, trace_id__in=ordered[index : index + IN_CHUNK])
        for name, n in roots.order_by().values("name").annotate(n=Count("id")).values_list("name", "n"):
            counts[name] = counts.get(name, 0) + n
    return counts


@dataclass
class Operation:
    """One operation's figures over the window (``as_json`` is the contract's shape)."""

    name: str
    count: int = 0
    errors: int = 0
    refusals: int = 0
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


def monitor(
    *, window: int = DEFAULT_WINDOW, now_ns: int | None = None, buckets: int = BUCKETS, series: bool = True
) -> Monitor:
    """Read the operations of the last ``window`` seconds: counts, errors, refusals, percentiles, chart series.

    ``series=False`` leaves the per-bucket chart series empty (the JSON has none)."""
    until = _now_ns() if now_ns is None else now_ns
    since = until - window * 1_000_000_000
    rows = _read(since, MAX_ROWS + 1)
    sampled = len(rows) > MAX_ROWS
    if sampled:
        del rows[MAX_ROWS:]
    runs: dict[str, list[tuple]] = {}
    for row in rows:
        run = runs.get(row[0])
        if run is None:
            run = runs[row[0]] = []
        run.append(row)
    del rows
    operations: dict[str, Operation] = {}
    refused_traces: set[str] = set()
    for name, run in runs.items():
        durations = sorted([row[1] for row in run])
        operation = operations[name] = Operation(name, count=len(run), errors=sum(1 for row in run if row[3]))
        refused = [row[4] for row in run if row[4] is not None]
        operation.refusals = len(refused)
        refused_traces.update(refused)
        operation.__dict__.update({f"p{p}_ms": _ms(percentile(durations, p)) for p in (50, 95, 99)})
    if sampled:  # exact counts all the same
        for row in _operation_spans(since).order_by().values("name").annotate(n=Count("id"), e=Sum("error")):
            operation = operations.setdefault(row["name"], Operation(row["name"]))
            operation.count, operation.errors = row["n"], int(row["e"] or 0)
        refused = _operation_spans(since).filter(REFUSED)
        counts = refused.order_by().values("name").annotate(n=Count("id")).values_list("name", "n")
        for name, n in counts:
            operations[name].refusals = n
        refused_traces = set(refused.order_by().values_list("trace_id", flat=True))
    if sampled:  # the entries read are a sample too
        for name, n in _refused_entries(since, refused_traces).items():
            if name in operations:
                operations[name].refusals += n
    else:  # the entries were read with the rest: no query per trace
        for name, run in runs.items():
            operations[name].refusals += sum(1 for row in run if row[5] is not None and row[5] in refused_traces)
    bucket_ns = max(window * 1_000_000_000 // buckets, 1)
    last = buckets - 1
    for name, operation in operations.items():
        operation.per_minute = round(operation.count / (window / 60), 3)
        if not series:
            continue
        by_bucket: list[list[int]] = [[] for _ in range(buckets)]
        for _, duration, start, *_ in runs.get(name, ()):
            index = (start - since) // bucket_ns
            by_bucket[last if index > last else 0 if index < 0 else index].append(duration)
        for durations in by_bucket:
            durations.sort()
        operation.series = [
            {
                "start_ns": since + index * bucket_ns,
                "count": len(durations),
                "p50_ms": _ms(percentile(durations, 50)),
                "p95_ms": _ms(percentile(durations, 95)),
            }
            for index, durations in enumerate(by_bucket)
        ]
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
