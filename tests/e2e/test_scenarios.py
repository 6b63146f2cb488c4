"""The guided scenarios of the README's "Diagnose" section, each in a short form: what the walkthrough says shows."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from opentelemetry.trace import StatusCode

from faults.models import FaultRule
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
    assert "/admin/traces/monitor/" in text and "faults cleared" in text
    assert FaultRule.objects.count() == 0


def test_failing_share_fails_some_save_order_steps_and_writes_nothing_for_them(seeded_shop, spans):
    text = scenario("failing-share", orders=60)

    failed = [step for step in spans_named(spans, "save_order") if step.status.status_code is StatusCode.ERROR]
    assert failed and all(faulted(step)["mall.fault.kind"] == "error" for step in failed)
    assert len(failed) <= 20
    assert Order.objects.count() == 60 - len(failed)  # nothing written for a failed checkout
    assert f"placed {60 - len(failed)} of 60" in text and f"checkout_fault_injected {len(failed)}" in text
    assert FaultRule.objects.count() == 0


def test_hot_item_runs_a_baseline_then_the_hold_on_one_goods(seeded_shop, spans):
    text = scenario("hot-item", orders=10)

    assert "before (no fault): placed 10 of 10" in text and "with the fault: placed 10 of 10" in text
    held = [step for step in spans_named(spans, "query_inv") if faulted(step)]
    assert len(held) == 10
    assert all((step.end_time - step.start_time) / 1e6 >= 100 for step in held)
    assert set(Order.objects.values_list("lines__goods_id", flat=True).distinct()).__len__() == 1
    assert FaultRule.objects.count() == 0


def test_collector_outage_keeps_the_shop_answering(seeded_shop, spans):
    text = scenario("collector-outage", orders=8)

    assert "load: placed 8 of 8" in text and "failed 0" in text
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
