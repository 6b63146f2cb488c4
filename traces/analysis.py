"""Pure analysis of one trace's span tree: each span's self time and the trace's critical path.

Works on plain intervals (no database, no Django): the trace page and the trace JSON feed it the stored
spans' ``span_id``, ``parent_span_id``, start and end in nanoseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """One span's place in its trace: ids and its start and end (any unit, the same for all)."""

    span_id: str
    parent_span_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Section:
    """A stretch of time during which a span is on the critical path: [start, end)."""

    span_id: str
    start: int
    end: int


def _children(spans: Sequence[Interval]) -> tuple[list[Interval], dict[str, list[Interval]]]:
    """The roots (no parent in the trace) and each span's children."""
    ids = {span.span_id for span in spans}
    children: dict[str, list[Interval]] = {}
    roots = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in ids and span.parent_span_id != span.span_id:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    return roots, children


def union_length(intervals: Iterable[tuple[int, int]]) -> int:
    """Return the length of the union of [start, end) intervals (overlaps counted once)."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def self_times(spans: Sequence[Interval]) -> dict[str, int]:
    """Return each span's self time: its duration minus the union of its children's intervals within it.

    A child that starts before its parent or ends after it (clock skew between processes, an async
    child) counts only for the part inside the parent, so a self time is never negative."""
    _, children = _children(spans)
    result = {}
    for span in spans:
        inside = ((max(child.start, span.start), min(child.end, span.end)) for child in children.get(span.span_id, ()))
        result[span.span_id] = max(span.end - span.start, 0) - union_length(inside)
    return result


def _clipped(spans: Sequence[Interval]) -> tuple[Interval | None, dict[str, list[Interval]]]:
    """The trace's root and each span's children clipped to their parent (children outside it dropped).

    The root is the root span that ends last (a trace with one root: that root)."""
    roots, children = _children(spans)
    if not roots:
        return None, {}
    root = max(roots, key=lambda span: (span.end, -span.start))
    clipped: dict[str, list[Interval]] = {}
    stack = [root]
    while stack:
        parent = stack.pop()
        kept = []
        for child in children.get(parent.span_id, ()):
            start, end = max(child.start, parent.start), min(child.end, parent.end)
            if start > parent.end or end < parent.start:
                continue  # wholly outside its parent: cannot decide when the parent ends
            kept.append(Interval(child.span_id, child.parent_span_id, start, max(end, start)))
        clipped[parent.span_id] = kept
        stack.extend(kept)
    return root, clipped


def critical_path(spans: Sequence[Interval]) -> list[Section]:
    """Return the trace's critical path as Jaeger computes it, latest section first.

    From the root's end, walk back: the child that finishes last before the current point is on the
    path from its end back to its start, recursively (its own last-finishing child first); between two
    such children, and before the first, the parent itself is on the path. Children are first clipped
    to their parent, as Jaeger does. Unlike Jaeger, a child that ends exactly where the next one on the
    path starts (sequential steps) still counts."""
    root, children = _clipped(spans)
    if root is None:
        return []
    parents = {child.span_id: parent_id for parent_id, kids in children.items() for child in kids}
    by_id = {root.span_id: root} | {child.span_id: child for kids in children.values() for child in kids}
    sections: list[Section] = []
    visited = {root.span_id}  # a child that ends where its next sibling starts is a candidate, once
    current, until = root, None  # until: the point to walk back from (None: the span's end)
    while True:
        end = current.end if until is None else until
        candidates = [
            child
            for child in children.get(current.span_id, ())
            if child.span_id not in visited and (until is None or child.end <= until)
        ]
        if candidates:
            last = max(candidates, key=lambda child: (child.end, child.start))
            if last.end < end:
                sections.append(Section(current.span_id, last.end, end))
            visited.add(last.span_id)
            current, until = last, None
            continue
        if current.start < end:
            sections.append(Section(current.span_id, current.start, end))
        if current.span_id == root.span_id:
            return sections
        current, until = by_id[parents[current.span_id]], current.start


def on_critical_path(spans: Sequence[Interval]) -> dict[str, int]:
    """Return, per span id on the critical path, how long it is on it (spans off the path are absent)."""
    result: dict[str, int] = {}
    for section in critical_path(spans):
        result[section.span_id] = result.get(section.span_id, 0) + section.end - section.start
    return result
