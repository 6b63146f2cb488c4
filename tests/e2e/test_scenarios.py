"""The guided scenarios of the README's "Diagnose" section, each in a short form: what the walkthrough says shows."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from opentelemetry.trace import StatusCode

from faults.models import FaultRule
from faults.scenarios import SCENARIOS, run_scenario
from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seeded_shop(settings):
    settings.DEBUG = False
    settings.MALL_ALLOW_FAULT_INJECTION = True
    call_command("seed_demo", goods=4, stock=10_000, users=4, password="scenario-pw", stdout=StringIO())


def scenario(name: str, **options) -> str:
    out = StringIO()
    call_command("scenario", name, concurrency=options.pop("concurrency", 2), stdout=out, **options)
    return out.getvalue()


def spans_named(spans, name):
    return [span for span in spans.get_finished_spans() if span.name == name]


def milliseconds(span) -> float:
    return (span.end_time - span.start_time) / 1e6


def percentile(values, share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def faulted(span) -> dict | None:
    events = [event for event in span.events if event.name == "mall.fault"]
    return dict(events[0].attributes) if events else None


def test_slow_step_makes_a_share_of_query_inv_spans_slow(seeded_shop, spans):
    text = scenario("slow-step", orders=40)

    steps = spans_named(spans, "query_inv")
    slow = [step for step in steps if faulted(step)]
    assert len(steps) == 40
    assert 2 <= len(slow) <= 24  # 30 % of 40, drawn per call
    assert all((step.end_time - step.start_time) / 1e6 >= 200 for step in slow)
    assert all(faulted(step)["mall.fault.kind"] == "delay" for step in slow)
    # the monitor's figures, as the walkthrough reads them: p95 over 200 ms, p50 low
    durations = [milliseconds(step) for step in steps]
    assert percentile(durations, 0.95) >= 200 and percentile(durations, 0.5) < 200
    # the search sorted by duration: the slowest query_inv spans are the faulted ones
    slowest = sorted(steps, key=milliseconds, reverse=True)[: len(slow)]
    assert all(faulted(step) for step in slowest)
    assert "http://127.0.0.1:8000/admin/traces/monitor/" in text
    assert "http://127.0.0.1:8000/admin/traces/?operation=query_inv&sort=duration" in text
    assert "faults cleared" in text
    assert FaultRule.objects.count() == 0


def test_failing_share_fails_some_save_order_steps_and_writes_nothing_for_them(seeded_shop, spans):
    text = scenario("failing-share", orders=60)

    failed = [step for step in spans_named(spans, "save_order") if step.status.status_code is StatusCode.ERROR]
    assert failed and all(faulted(step)["mall.fault.kind"] == "error" for step in failed)
    assert len(failed) <= 20
    assert Order.objects.count() == 60 - len(failed)  # nothing written for a failed checkout
    # the search's error traces: their create_order is an error too, and no order row names their trace
    error_traces = {format(step.context.trace_id, "032x") for step in failed}
    checkouts = [span for span in spans_named(spans, "create_order") if span.status.status_code is StatusCode.ERROR]
    assert {format(span.context.trace_id, "032x") for span in checkouts} == error_traces
    assert not any("mall.order.no" in span.attributes for span in checkouts)
    assert not Order.objects.filter(trace_id__in=error_traces).exists()
    assert "http://127.0.0.1:8000/admin/traces/?operation=create_order&outcome=error" in text
    assert f"placed {60 - len(failed)} of 60" in text and f"checkout_fault_injected {len(failed)}" in text
    assert FaultRule.objects.count() == 0


def test_hot_item_runs_a_baseline_then_the_hold_on_one_goods(seeded_shop, spans, on_mariadb):
    lines = []
    baseline, held_run = run_scenario(SCENARIOS["hot-item"], orders=10, concurrency=2, say=lines.append)
    text = "\n".join(lines)

    assert "before (no fault): placed 10 of 10" in text and "with the fault: placed 10 of 10" in text
    held = [step for step in spans_named(spans, "query_inv") if faulted(step)]
    assert len(held) == 10
    assert all(milliseconds(step) >= 100 for step in held)
    assert set(Order.objects.values_list("lines__goods_id", flat=True).distinct()).__len__() == 1
    # the lock queues the buyers one behind the other: ten holds of 100 ms cannot overlap
    assert held_run.figures["elapsed_s"] >= 10 * 0.1
    assert held_run.figures["orders_per_s"] < baseline.figures["orders_per_s"]
    if on_mariadb:  # a waiting buyer's query_inv: its own hold plus the wait for the holder's row lock
        assert max(milliseconds(step) for step in held) >= 150
    assert "http://127.0.0.1:8000/admin/traces/?operation=query_inv&sort=duration" in text
    assert FaultRule.objects.count() == 0


def test_collector_outage_keeps_the_shop_answering_counts_the_dropped_spans_and_recovers(seeded_shop, otlp_receiver):
    text = scenario("collector-outage", orders=8, collector=otlp_receiver.grpc_endpoint)

    assert re.search(r"collector away: placed 8 of 8 .* failed 0,", text), text
    dropped = re.search(r"collector was away: (\d+) \(queue full (\d+), failed exports (\d+)", text)
    assert dropped and int(dropped[1]) > 0 and int(dropped[1]) == int(dropped[2]) + int(dropped[3]), text
    assert re.search(r"collector back: placed 8 of 8 .* failed 0,", text), text
    exported = int(re.search(r"collector back at \S+: (\d+) spans exported", text)[1])
    assert exported == len(otlp_receiver.spans) > 0  # all of them arrived, none of the outage's
    assert len(otlp_receiver.spans_named("create_order")) == 8
    assert "docker compose start jaeger" in text


def test_a_scenario_clears_its_faults_even_when_the_load_breaks(seeded_shop, monkeypatch):
    from faults import scenarios

    def interrupted(**kwargs):
        assert FaultRule.objects.filter(step="save_order").exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(scenarios, "run_orders", interrupted)  # Ctrl-C in the middle of the load
    with pytest.raises(KeyboardInterrupt):
        scenario("failing-share", orders=5)
    assert FaultRule.objects.count() == 0


def test_a_scenario_is_refused_when_fault_injection_is_off(seeded_shop, settings):
    settings.MALL_ALLOW_FAULT_INJECTION = False

    with pytest.raises(CommandError, match="refused"):
        scenario("slow-step", orders=1)
