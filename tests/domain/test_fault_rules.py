"""Faults switched on at run time (in-process): the command, each fault kind, rate, expiry and the safety gate."""

import logging
import time

import pytest
from django.core.management import CommandError, call_command
from opentelemetry.trace import StatusCode

import faults
from faults.errors import FaultInjected
from faults.models import FaultRule
from faults.selectors import active_rules, forget_cached_rules, rule_for
from orders.expiry import close_order_traced
from orders.models import Order
from tests.domain.test_checkout import shop_state, stock_of
from tests.factories import fill_cart
from tests.support import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def faults_allowed(settings):
    settings.DEBUG = False
    settings.MALL_ALLOW_FAULT_INJECTION = True


@pytest.fixture
def fault_logs():
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    for name in ("faults", "orders"):
        logging.getLogger(name).addHandler(handler)
    yield records
    for name in ("faults", "orders"):
        logging.getLogger(name).removeHandler(handler)


def faults_command(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("faults", *args, stdout=out)
    return out.getvalue()


def finished(spans, name):
    return [span for span in spans.get_finished_spans() if span.name == name]


def fault_events(span):
    return [event for event in span.events if event.name == "mall.fault"]


def test_an_error_rule_fails_the_checkout_with_503_and_writes_nothing(
    faults_allowed, api, user, goods_in_stock, address, spans, fault_logs
):
    fill_cart(user, (goods_in_stock(stock=5), 2))
    faults_command("set", "save_order_goods", "--error")
    before = shop_state()

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "checkout_fault_injected"
    assert shop_state() == before
    (step,) = finished(spans, "save_order_goods")
    assert step.status.status_code is StatusCode.ERROR
    (event,) = fault_events(step)
    assert event.attributes["mall.fault.kind"] == "error"
    assert event.attributes["mall.fault.rate"] == 100
    messages = [record.getMessage() for record in fault_logs]
    assert any("injected fault step=save_order_goods kind=error" in message for message in messages)
    assert any(
        message.startswith("checkout failed: injected fault code=checkout_fault_injected") for message in messages
    )
    assert not any("checkout refused" in message for message in messages)


def test_a_delay_rule_lengthens_the_step_span(faults_allowed, api, user, goods_in_stock, address, spans):
    fill_cart(user, (goods_in_stock(), 1))
    faults_command("set", "query_goods", "--delay-ms", "150")

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 201
    (step,) = finished(spans, "query_goods")
    assert (step.end_time - step.start_time) / 1e6 >= 150
    (event,) = fault_events(step)
    assert dict(event.attributes) | {} == {
        "mall.fault.kind": "delay",
        "mall.fault.step": "query_goods",
        "mall.fault.milliseconds": 150,
        "mall.fault.rate": 100,
        "mall.fault.source": "rule",
    }


def test_a_hold_rule_keeps_the_step_open_after_its_work(faults_allowed, api, user, goods_in_stock, address, spans):
    goods = goods_in_stock(stock=5)
    fill_cart(user, (goods, 2))
    faults_command("set", "query_inv", "--hold-ms", "120")

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 201
    (step,) = finished(spans, "query_inv")
    assert (step.end_time - step.start_time) / 1e6 >= 120
    assert fault_events(step)[0].attributes["mall.fault.kind"] == "hold"
    assert stock_of(goods) == 3


def test_a_rate_hits_about_that_share_of_calls(faults_allowed, spans):
    faults_command("set", "delete_shopcart", "--error", "--rate", "30")
    hits = 0
    for _ in range(200):
        try:
            with faults.inject("delete_shopcart"):
                pass
        except FaultInjected:
            hits += 1
    assert 30 <= hits <= 90  # 15 % to 45 % of 200


def test_a_rule_for_some_seconds_ends_by_itself(faults_allowed):
    faults_command("set", "pay_order", "--delay-ms", "10", "--for", "0.5")
    assert rule_for("pay_order") is not None

    wait_until(lambda: rule_for("pay_order") is None, timeout=2, what="the rule to expire")


def test_clear_ends_the_rules(faults_allowed):
    faults_command("set", "pay_order", "--error")
    faults_command("set", "cancel_order", "--error")

    assert "cleared 1 rule(s)" in faults_command("clear", "pay_order")
    assert [rule.step for rule in active_rules()] == ["cancel_order"]
    faults_command("clear")
    assert active_rules() == []
    assert "no fault rules" in faults_command("list")


def test_another_process_sees_a_rule_within_its_refresh(faults_allowed):
    assert rule_for("save_order") is None  # read and cached
    FaultRule.objects.create(step="save_order", kind="error")  # as another process would write it

    wait_until(lambda: rule_for("save_order") is not None, timeout=2, what="the cache to be refreshed")


def test_pay_and_cancel_faults_answer_503_and_change_nothing(faults_allowed, api, user, goods_in_stock, address):
    fill_cart(user, (goods_in_stock(), 1))
    order_id = api.post("/api/orders/", address, format="json").json()["id"]
    faults_command("set", "pay_order", "--error")
    faults_command("set", "cancel_order", "--error")

    paid = api.post(f"/api/orders/{order_id}/pay/")
    cancelled = api.post(f"/api/orders/{order_id}/cancel/")

    assert (paid.status_code, paid.json()["code"]) == (503, "fault_injected")
    assert (cancelled.status_code, cancelled.json()["code"]) == (503, "fault_injected")
    assert Order.objects.get(pk=order_id).status == Order.Status.PENDING


def test_a_close_fault_leaves_the_order_pending(faults_allowed, api, user, goods_in_stock, address, spans):
    fill_cart(user, (goods_in_stock(), 1))
    order_id = api.post("/api/orders/", address, format="json").json()["id"]
    Order.objects.filter(pk=order_id).update(expires_at=Order.objects.get(pk=order_id).created_at)
    faults_command("set", "close_unpaid_order", "--error")

    with pytest.raises(FaultInjected):
        close_order_traced(order_id, actor="timeout")

    assert Order.objects.get(pk=order_id).status == Order.Status.PENDING
    (close,) = finished(spans, "close_unpaid_order")
    assert close.status.status_code is StatusCode.ERROR
    assert fault_events(close)[0].attributes["mall.fault.kind"] == "error"


def test_without_debug_or_the_setting_the_command_refuses_and_stored_rules_are_ignored(
    settings, api, user, goods_in_stock, address
):
    settings.DEBUG = False
    settings.MALL_ALLOW_FAULT_INJECTION = False
    fill_cart(user, (goods_in_stock(), 1))

    with pytest.raises(CommandError, match="refused: Fault injection is off"):
        faults_command("set", "save_order", "--error")
    FaultRule.objects.create(step="save_order", kind="error")
    forget_cached_rules()

    assert "1 stored rule(s) ignored" in faults_command("list")
    assert api.post("/api/orders/", address, format="json").status_code == 201


def test_checkout_fail_step_is_listed_as_a_rule_set_at_start(faults_allowed, settings):
    settings.CHECKOUT_FAIL_STEP = "save_order"

    assert "save_order: error (CHECKOUT_FAIL_STEP)" in faults_command("list")


@pytest.mark.parametrize(
    "args, message",
    [
        (["set", "nope", "--error"], "invalid choice"),
        (["set", "query_inv", "--delay-ms", "0"], "positive number of milliseconds"),
        (["set", "query_inv", "--error", "--rate", "0"], "percent from 1 to 100"),
        (["set", "query_inv", "--error", "--for", "-1"], "positive number of seconds"),
    ],
)
def test_bad_rules_are_refused(faults_allowed, args, message):
    with pytest.raises(CommandError, match=message):
        faults_command(*args)
    assert FaultRule.objects.count() == 0


def test_the_admin_is_for_superusers_and_every_page_shows_the_banner(faults_allowed, client, staff_user):
    from tests.factories import UserFactory

    faults_command("set", "query_inv", "--hold-ms", "300", "--rate", "50")
    client.force_login(staff_user)

    index = client.get("/admin/")
    changelist = client.get("/admin/faults/faultrule/")

    assert 'id="fault-banner"' in index.content.decode()
    assert "query_inv: hold 300 ms at 50%" in index.content.decode()
    assert changelist.status_code == 200
    client.force_login(UserFactory(is_staff=True, is_superuser=False))
    assert client.get("/admin/faults/faultrule/").status_code == 403
    faults_command("clear")
    client.force_login(staff_user)
    assert 'id="fault-banner"' not in client.get("/admin/").content.decode()


def test_the_hook_costs_nothing_without_rules(faults_allowed):
    started = time.perf_counter()
    for _ in range(1000):
        with faults.inject("save_order"):
            pass
    assert time.perf_counter() - started < 1


def test_the_admin_refuses_new_rules_while_fault_injection_is_off(settings, client, staff_user):
    settings.DEBUG = False
    settings.MALL_ALLOW_FAULT_INJECTION = False
    client.force_login(staff_user)

    assert client.get("/admin/faults/faultrule/add/").status_code == 403
    assert client.get("/admin/faults/faultrule/").status_code == 200
