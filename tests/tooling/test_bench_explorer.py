"""The explorer bench (``python -m perf explorer``) at a smoke size: its seed, every search case, the write cost."""

import pytest

from perf.bench.traces import explorer
from traces.models import TraceSpan


@pytest.mark.django_db(transaction=True)  # the write cost changes indexes (SQLite: not inside a transaction)
def test_the_bench_seeds_a_mix_times_every_case_and_compares_the_index_sets():
    placeholders = explorer.seed(600)

    assert TraceSpan.objects.count() == placeholders["spans"] >= 600
    outcomes = set(TraceSpan.objects.filter(entry=True).values_list("outcome", flat=True))
    assert outcomes == {"ok", "refusal", "error"}
    results = explorer.time_cases(explorer.CASES, placeholders, runs=1)
    assert [r["case"] for r in results] == [label for label, _ in explorer.CASES]
    assert next(r for r in results if r["case"] == "order_no")["found"] == 1
    cost = explorer.write_cost(rounds=2, checkouts=2)
    assert cost["spans_per_checkout"] > 20 and cost["main_cpu_ms"] > 0 and cost["branch_cpu_ms"] > 0
    assert TraceSpan.objects.count() == placeholders["spans"]  # the written checkouts are gone again
