"""The trace search (pure reads): stored traces by operation, order number, outcome, duration and time.

A trace is found through its entry rows (``TraceSpan.entry``: where a process's part of it begins, about
one row in fifteen), so every query walks the index of entries (``tracespan_recent_entries``) and stops
at ``limit`` (sorted by duration: the entries that pass the filters, sorted). The filters on the whole
trace are index probes, a span of that name (``tracespan_trace_name``) or of that order
(``tracespan_order_no``); the outcome is the entry rows' own column, checked against the whole trace.
Only the traces shown are then read in full. No index serves the search alone: the store writes every
span, and each index costs it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from django import forms
from django.db.models import Count, Exists, Max, OuterRef, Q

from traces.models import TraceSpan

DEFAULT_LIMIT = 20
MAX_LIMIT = 500
OUTCOMES = ("ok", "refusal", "error")
SORTS = ("start", "duration")
MAX_DURATION_MS = 10**9  # about 11 days: anything longer is a typo, not a span
# Parameters that are not the search's but that a client may send along (DRF's format override).
IGNORED_PARAMETERS = frozenset({"format"})
PAGES = 4  # entry pages read at most when traces with several entries repeat (each page 2 x limit rows)


_moment_input = forms.TextInput(attrs={"placeholder": "2026-12-03T14:00Z"})


class TraceSearchForm(forms.Form):
    """The search's parameters (the admin page's form and the JSON API's query string): all optional."""

    operation = forms.CharField(required=False, max_length=200, help_text="any span's name in the trace")
    order_no = forms.CharField(required=False, max_length=40, label="Order number")
    outcome = forms.ChoiceField(required=False, choices=[("", "any")] + [(value, value) for value in OUTCOMES])
    min_duration_ms = forms.FloatField(required=False, min_value=0, max_value=MAX_DURATION_MS, label="Min ms")
    max_duration_ms = forms.FloatField(required=False, min_value=0, max_value=MAX_DURATION_MS, label="Max ms")
    since = forms.CharField(
        required=False, max_length=40, help_text="ISO 8601, UTC unless it names a zone", widget=_moment_input
    )
    until = forms.CharField(
        required=False, max_length=40, help_text="ISO 8601, UTC unless it names a zone", widget=_moment_input
    )
    sort = forms.ChoiceField(required=False, choices=[("start", "newest first"), ("duration", "slowest first")])
    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.unknown = sorted(set(data or ()) - set(self.fields) - IGNORED_PARAMETERS)

    def clean_since(self):
        return _moment(self.cleaned_data["since"])

    def clean_until(self):
        return _moment(self.cleaned_data["until"])

    def clean(self):
        cleaned = super().clean()
        for name in self.unknown:
            self.add_error(None, f"Unknown parameter {name!r}.")
        low, high = cleaned.get("min_duration_ms"), cleaned.get("max_duration_ms")
        if low is not None and high is not None and low > high:
            self.add_error("max_duration_ms", "The maximum is below the minimum.")
        since, until = cleaned.get("since"), cleaned.get("until")
        if since is not None and until is not None and since > until:
            self.add_error("until", "The end of the window is before its beginning.")
        return cleaned

    def query(self) -> TraceQuery:
        """The validated search (call after ``is_valid()``)."""
        data = self.cleaned_data
        return TraceQuery(
            operation=data["operation"].strip(),
            order_no=data["order_no"].strip(),
            outcome=data["outcome"] or "",
            min_duration_ms=data["min_duration_ms"],
            max_duration_ms=data["max_duration_ms"],
            since=data["since"],
            until=data["until"],
            sort=data["sort"] or "start",
            limit=data["limit"] or DEFAULT_LIMIT,
        )


def _moment(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise forms.ValidationError("Not an ISO 8601 date and time (e.g. 2026-12-03T14:05:00Z).") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class TraceQuery:
    """One validated search; ``search_traces`` runs it."""

    operation: str = ""
    order_no: str = ""
    outcome: str = ""
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str = "start"
    limit: int = DEFAULT_LIMIT


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1e9)


def _entries(query: TraceQuery):
    """The entry rows that match, in the query's order (a queryset: nothing read yet)."""
    # "IN (1)", not Django's bare boolean column ("WHERE entry"), which SQLite cannot look up in an index.
    entries = TraceSpan.objects.filter(entry__in=[True])
    if query.since is not None:
        entries = entries.filter(start_ns__gte=_ns(query.since))
    if query.until is not None:
        entries = entries.filter(start_ns__lte=_ns(query.until))
    if query.min_duration_ms is not None:
        entries = entries.filter(duration_ns__gte=int(query.min_duration_ms * 1e6))
    if query.max_duration_ms is not None:
        entries = entries.filter(duration_ns__lte=int(query.max_duration_ms * 1e6))
    if query.order_no:
        entries = entries.filter(trace_id__in=TraceSpan.objects.filter(order_no=query.order_no).values("trace_id"))
    if query.operation:
        named = TraceSpan.objects.filter(trace_id=OuterRef("trace_id"), name=query.operation)
        entries = entries.filter(Q(name=query.operation) | Exists(named))
    if query.outcome:
        # Each entry row holds its own part's outcome: no subquery here. A trace of several parts (a load
        # run's client root over the shop's server span) takes the worst; ``search_traces`` checks that.
        entries = entries.filter(outcome=query.outcome)
    order = "-duration_ns" if query.sort == "duration" else "-start_ns"
    return entries.order_by(order, "-id")


def _trace_ids(query: TraceQuery) -> list[str]:
    """Up to ``limit`` distinct trace ids in the query's order (a trace with several entries counts once)."""
    entries, found, page = _entries(query).values_list("trace_id", flat=True), {}, 2 * query.limit
    for number in range(PAGES):
        batch = list(entries[number * page : (number + 1) * page])
        for trace_id in batch:
            found.setdefault(trace_id, None)
            if len(found) == query.limit:
                return list(found)
        if len(batch) < page:
            break
    return list(found)


def _outcome(errors: int, refusals: int) -> str:
    return "error" if errors else "refusal" if refusals else "ok"


def search_traces(query: TraceQuery) -> list[dict]:
    """The traces that match, as the JSON API gives them (``trace_id``, ``root``, ``start``, ...), in order.

    A trace's root is its earliest entry (the span without a parent when the store has it); its start
    and duration run from the earliest entry's start to the latest entry's end.
    """
    # With an outcome, a few more candidates than shown: a trace whose other part did worse drops out below.
    wanted = min(2 * query.limit, MAX_LIMIT * 2) if query.outcome else query.limit
    trace_ids = _trace_ids(replace(query, limit=wanted))
    if not trace_ids:
        return []
    roots: dict[str, dict] = {}
    for row in (
        TraceSpan.objects.filter(entry__in=[True], trace_id__in=trace_ids)
        .order_by("start_ns", "id")
        .values("trace_id", "name", "service", "parent_span_id", "start_ns", "duration_ns")
    ):
        end = row["start_ns"] + row["duration_ns"]
        root = roots.get(row["trace_id"])
        if root is None:
            roots[row["trace_id"]] = {**row, "end": end}
            continue
        root["end"] = max(root["end"], end)
        if root["parent_span_id"] and not row["parent_span_id"]:  # the true root began later than a remote part
            root.update(name=row["name"], service=row["service"], parent_span_id="")
    totals = {
        row["trace_id"]: row
        for row in TraceSpan.objects.filter(trace_id__in=trace_ids)
        .values("trace_id")
        .annotate(
            spans=Count("id"),
            errors=Count("id", filter=Q(error=True)),
            refusals=Count("id", filter=~Q(refusal_code="")),
            order_no=Max("order_no"),
        )
        .order_by()
    }
    results = []
    for trace_id in trace_ids:
        root, total = roots[trace_id], totals[trace_id]
        outcome = _outcome(total["errors"], total["refusals"])
        if query.outcome and outcome != query.outcome:
            continue
        if len(results) == query.limit:
            break
        results.append(
            {
                "trace_id": trace_id,
                "root": {"name": root["name"], "service": root["service"]},
                "start": datetime.fromtimestamp(root["start_ns"] / 1e9, tz=UTC).isoformat(timespec="microseconds"),
                "duration_ms": round((root["end"] - root["start_ns"]) / 1e6, 3),
                "span_count": total["spans"],
                "outcome": outcome,
                "order_no": total["order_no"] or "",
            }
        )
    return results
