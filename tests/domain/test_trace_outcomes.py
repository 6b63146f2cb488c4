"""The outcome the trace store gives each entry row (``traces.store.TraceOutcomes``), from the spans under it."""

import re

import pytest

from tests.factories import fill_cart
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


@pytest.mark.django_db(transaction=True)
def test_the_store_marks_a_refused_checkout_and_a_placed_one(api, user, goods_in_stock, address):
    from tests.span_forwarding import spans_also_to
    from tests.support import wait_until
    from traces.models import TraceSpan
    from traces.store import trace_store_processor

    with spans_also_to(trace_store_processor()):
        refused = api.post("/api/orders/", address, format="json")
        fill_cart(user, (goods_in_stock(), 1))
        placed = api.post("/api/orders/", address, format="json").json()
        assert refused.status_code == 400
        refused_trace = re.search(r"-([0-9a-f]{32})-", refused["traceresponse"]).group(1)

        def entries():
            found = dict(TraceSpan.objects.filter(entry=True, trace_id__in=[refused_trace, placed["trace_id"]])
                         .values_list("trace_id", "outcome"))  # fmt: skip
            return found if len(found) == 2 else None

        stored = wait_until(entries, timeout=15, what="both checkouts' entries in the store")
    assert stored == {refused_trace: "refusal", placed["trace_id"]: "ok"}, list(
        TraceSpan.objects.filter(trace_id=refused_trace).values_list("name", "entry", "refusal_code", "outcome")
    )
