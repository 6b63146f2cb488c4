"""The outcome the trace store gives each entry row (``traces.store.TraceOutcomes``), from the spans under it."""

from traces.store import COLUMNS, TraceOutcomes


def row(trace_id: str, *, entry=False, error=False, refusal="") -> tuple:
    values = dict.fromkeys(COLUMNS, "")
    values.update(trace_id=trace_id, entry=entry, error=error, refusal_code=refusal)
    return tuple(values[name] for name in COLUMNS)


def outcomes(rows: list[tuple]) -> dict[str, str]:
    at = COLUMNS.index("outcome")
    return {r[0]: r[at] for r in rows if r[COLUMNS.index("entry")]}


def test_an_entry_takes_the_worst_of_the_spans_under_it_even_from_an_earlier_batch():
    marks = TraceOutcomes()
    first = marks.mark([row("ok"), row("refused", refusal="cart_empty"), row("failed", error=True)])
    assert outcomes(first) == {}  # no entry yet: remembered
    second = marks.mark([
        row("failed", refusal="x"), row("ok", entry=True), row("refused", entry=True), row("failed", entry=True),
        row("own", entry=True, error=True),
    ])  # fmt: skip
    assert outcomes(second) == {"ok": "ok", "refused": "refusal", "failed": "error", "own": "error"}
    assert marks.pending == {}


def test_the_memory_of_waiting_traces_is_bounded():
    marks = TraceOutcomes(limit=2)
    marks.mark([row(name, error=True) for name in ("a", "b", "c")])
    assert list(marks.pending) == ["b", "c"]
