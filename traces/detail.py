"""One stored trace, explained: its span tree with each span's self time, the critical path, and each
operation's span set against the last hour of that operation (p95), for the trace page and its JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from traces.analysis import Interval, critical_path, self_times
from traces.models import TraceSpan
from traces.monitor import HISTORY_WINDOW, recent_percentiles

TRACE_ID = re.compile(r"[0-9a-f]{32}")
MAX_SPANS_SHOWN = 2000


def when(start_ns: int) -> datetime:
    """Return a Unix time in nanoseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(start_ns / 1e9, tz=UTC)


@dataclass
class ExplainedSpan:
    """A stored span with what the trace page says about it."""

    span: TraceSpan
    depth: int
    self_ns: int
    critical: list[tuple[int, int]]  # the (start_ns, end_ns) stretches it is on the critical path
    history: dict | None  # the operation's recent percentiles (None: a database call, or no history)

    @property
    def critical_ns(self) -> int:
        """How long the span is on the critical path (0: not on it)."""
        return sum(end - start for start, end in self.critical)

    @property
    def above_p95(self) -> bool:
        p95 = (self.history or {}).get("p95_ms")
        return p95 is not None and self.span.duration_ns / 1e6 > p95


@dataclass
class ExplainedTrace:
    trace_id: str
    spans: list[ExplainedSpan]  # in tree order: each span after its parent, siblings by start
    begin_ns: int
    end_ns: int


def _tree(spans: list[TraceSpan]) -> list[tuple[int, TraceSpan]]:
    """(depth, span) in tree order: each span after its parent, siblings by start time."""
    ids = {span.span_id for span in spans}
    children: dict[str, list[TraceSpan]] = {}
    roots = []
    for span in spans:  # already ordered by start
        if span.parent_span_id and span.parent_span_id in ids:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    ordered: list[tuple[int, TraceSpan]] = []
    stack = [(0, span) for span in reversed(roots)]
    while stack:
        depth, span = stack.pop()
        ordered.append((depth, span))
        stack.extend((depth + 1, child) for child in reversed(children.get(span.span_id, [])))
    return ordered


def explain_trace(trace_id: str, *, with_history: bool = True) -> ExplainedTrace | None:
    """Read a trace and explain it; None when the store has none of its spans.

    History is read for the spans that are operations (not database calls: their names are SQL verbs,
    so the last hour of ``SELECT`` says nothing about this one), in one query for all their names, from
    the other traces of the last hour: with few of them, a span compared with itself is never above."""
    spans = list(TraceSpan.objects.filter(trace_id=trace_id).order_by("start_ns", "id")[:MAX_SPANS_SHOWN])
    if not spans:
        return None
    intervals = [
        Interval(span.span_id, span.parent_span_id, span.start_ns, span.start_ns + span.duration_ns) for span in spans
    ]
    own = self_times(intervals)
    critical: dict[str, list[tuple[int, int]]] = {}
    for section in critical_path(intervals):
        critical.setdefault(section.span_id, []).append((section.start, section.end))
    history = (
        recent_percentiles(
            {span.name for span in spans if span.kind != "CLIENT"}, window=HISTORY_WINDOW, other_than=trace_id
        )
        if with_history
        else {}
    )
    return ExplainedTrace(
        trace_id=trace_id,
        spans=[
            ExplainedSpan(
                span=span,
                depth=depth,
                self_ns=own[span.span_id],
                critical=critical.get(span.span_id, []),
                history=history.get(span.name) if span.kind != "CLIENT" else None,
            )
            for depth, span in _tree(spans)
        ],
        begin_ns=min(span.start_ns for span in spans),
        end_ns=max(span.start_ns + span.duration_ns for span in spans),
    )


def trace_json(trace: ExplainedTrace) -> dict:
    """Return the contract's JSON of a trace: its spans in tree order with their self time."""
    return {
        "trace_id": trace.trace_id,
        "spans": [
            {
                "span_id": item.span.span_id,
                "parent_span_id": item.span.parent_span_id,
                "name": item.span.name,
                "kind": item.span.kind,
                "service": item.span.service,
                "start": when(item.span.start_ns).isoformat().replace("+00:00", "Z"),
                "duration_ms": round(item.span.duration_ns / 1e6, 3),
                "self_ms": round(item.self_ns / 1e6, 3),
                "error": item.span.error,
                "attributes": item.span.detail.get("attributes", {}),
                "events": item.span.detail.get("events", []),
                "links": item.span.detail.get("links", []),
            }
            for item in trace.spans
        ],
    }
