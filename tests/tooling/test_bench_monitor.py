"""The monitor bench's in-process part on the test database, so CI runs its code (timing is never asserted)."""

from perf.bench.monitor import URLS, seed, time_urls
from traces.models import TraceSpan


def test_the_monitor_bench_seeds_whole_traces_and_fetches_every_url(db):
    trace_id = seed(3000)

    assert TraceSpan.objects.count() >= 3000
    assert TraceSpan.objects.filter(trace_id=trace_id, name="save_order").exists()
    assert set(TraceSpan.objects.values_list("kind", flat=True)) == {"SERVER", "INTERNAL", "CLIENT"}
    results = time_urls(trace_id, runs=1)  # each URL answered 200 (asserted inside)
    assert [result["url"] for result in results] == [url.format(trace=trace_id) for url in URLS]
