"""Every change of an order is an event with its actor and its trace (docs/api.md, "GET /api/orders/{id}/").

Each path — checkout, pay, customer cancel, admin cancel, timeout close, sweep close — is run through
the real entry point (API, admin action, the django-q2 task functions) with this process's spans
exported over OTLP/gRPC to the in-process receiver: the event's trace id must be a trace the receiver
got, carrying the order's ``mall.order.no``.
"""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.tasks import close_overdue_orders, close_unpaid_order
from tests.factories import TEST_PASSWORD, fill_cart
from tests.span_forwarding import otlp_to, spans_also_to
from tests.support import wait_until

pytestmark = pytest.mark.django_db
TRACE_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def exported(otlp_receiver):
    """The receiver, getting every span this process ends during the test."""
    with spans_also_to(otlp_to(otlp_receiver)):
        yield otlp_receiver


@pytest.fixture
def placed(api, user, goods_in_stock, address):
    """A pending order placed through the API (its JSON)."""
    fill_cart(user, (goods_in_stock(price="4.00", stock=10), 2))
    response = api.post("/api/orders/", address, format="json")
    assert response.status_code == 201
    return response.json()


def events_of(order_id: int) -> list[tuple[str, str]]:
    return list(OrderEvent.objects.filter(order_id=order_id).order_by("id").values_list("kind", "actor"))


def traced_span(receiver, event: OrderEvent, name: str, order_no: str):
    """The span ``name`` of the event's trace, as received over OTLP, carrying the order's number."""
    assert TRACE_ID.fullmatch(event.trace_id), event.trace_id
    spans = wait_until(
        lambda: [
            s
            for s in receiver.spans_named(name, trace_id=event.trace_id)
            if s.attributes.get("mall.order.no") == order_no
        ],
        timeout=10,
        what=f"span {name} of trace {event.trace_id} with mall.order.no",
    )
    assert len(spans) == 1
    return spans[0]


def last_event(order_id: int) -> OrderEvent:
    return OrderEvent.objects.filter(order_id=order_id).order_by("id").last()


def make_overdue(order_id: int) -> None:
    Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_the_checkout_records_placed_by_the_customer_in_its_trace(exported, placed):
    event = last_event(placed["id"])

    assert (event.kind, event.actor, event.staff_user) == ("placed", "customer", None)
    assert event.trace_id == placed["trace_id"]
    create = traced_span(exported, event, "create_order", placed["order_no"])
    assert create.attributes["mall.order.id"] == placed["id"]


def test_paying_records_paid_by_the_customer_in_the_pay_order_span(exported, api, placed):
    response = api.post(f"/api/orders/{placed['id']}/pay/")

    assert response.status_code == 200
    assert events_of(placed["id"]) == [("placed", "customer"), ("paid", "customer")]
    event = last_event(placed["id"])
    pay = traced_span(exported, event, "pay_order", placed["order_no"])
    assert pay.kind == "INTERNAL" and pay.status == "UNSET"
    assert pay.attributes["mall.order.id"] == placed["id"]
    [server] = [s for s in exported.trace(event.trace_id) if s.span_id == pay.parent_span_id]
    assert server.kind == "SERVER"  # under the request's span
    assert event.trace_id != placed["trace_id"]


def test_a_customer_cancel_records_cancelled_by_the_customer(exported, api, placed):
    response = api.post(f"/api/orders/{placed['id']}/cancel/")

    assert response.status_code == 200
    assert events_of(placed["id"]) == [("placed", "customer"), ("cancelled", "customer")]
    cancel = traced_span(exported, last_event(placed["id"]), "cancel_order", placed["order_no"])
    assert cancel.kind == "INTERNAL" and cancel.attributes["mall.order.actor"] == "customer"


def test_a_staff_cancel_in_the_admin_records_cancelled_by_that_staff_user(exported, placed, staff_user):
    client = Client()
    assert client.login(username=staff_user.username, password=TEST_PASSWORD)

    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_pending", "_selected_action": [placed["id"]]},
        secure=True,
    )

    assert response.status_code == 302
    assert events_of(placed["id"]) == [("placed", "customer"), ("cancelled", "staff")]
    event = last_event(placed["id"])
    assert event.staff_user == staff_user
    cancel = traced_span(exported, event, "cancel_order", placed["order_no"])
    assert cancel.attributes["mall.order.actor"] == "staff"


def test_the_timeout_task_records_closed_by_timeout_in_its_own_trace(exported, placed):
    order = Order.objects.get(pk=placed["id"])
    make_overdue(order.pk)

    assert close_unpaid_order(order.pk, "") == "closed"  # the django-q2 task function

    assert events_of(order.pk) == [("placed", "customer"), ("closed", "timeout")]
    event = last_event(order.pk)
    close = traced_span(exported, event, "close_unpaid_order", order.order_no)
    assert close.attributes["mall.order.id"] == order.pk
    assert close.parent_span_id == "" and event.trace_id != placed["trace_id"]
    assert [link.trace_id for link in close.links] == [placed["trace_id"]]  # back to its checkout


def test_the_sweep_traces_each_order_it_closes_as_the_buckets_task_does(
    exported, placed, api, user, goods_in_stock, address
):
    fill_cart(user, (goods_in_stock(), 1))
    second = api.post("/api/orders/", address, format="json").json()
    make_overdue(placed["id"])
    make_overdue(second["id"])

    assert close_overdue_orders() == 2  # the django-q2 task function

    batch_traces = set()
    for order in (placed, second):
        assert events_of(order["id"]) == [("placed", "customer"), ("closed", "sweep")]
        event = last_event(order["id"])
        close = traced_span(exported, event, "close_unpaid_order", order["order_no"])
        assert close.parent_span_id == "" and close.kind == "CONSUMER"  # a root of its own, like the bucket's
        assert [link.trace_id for link in close.links] == [order["trace_id"]]  # back to its checkout
        batch_traces.add(close.attributes["mall.timeout.task_trace_id"])
    [batch_trace] = batch_traces  # one batch
    assert [s.name for s in exported.trace(batch_trace)][-1:] == ["close_overdue_orders"]


def test_a_refused_pay_is_not_a_span_error_and_records_nothing(exported, api, placed):
    assert api.post(f"/api/orders/{placed['id']}/cancel/").status_code == 200

    response = api.post(f"/api/orders/{placed['id']}/pay/")

    assert response.status_code == 409 and response.json()["code"] == "order_not_pending"
    assert events_of(placed["id"]) == [("placed", "customer"), ("cancelled", "customer")]
    pay = wait_until(lambda: exported.spans_named("pay_order"), timeout=10, what="the pay_order span")[0]
    assert pay.status == "UNSET"
    assert pay.attributes["mall.refusal.code"] == "order_not_pending"
    assert pay.attributes["mall.order.no"] == placed["order_no"]
    assert not [e for e in pay.events if e.name == "exception"]


def test_a_refused_checkout_keeps_create_order_and_the_refusing_step_unset(
    exported, api, user, goods_in_stock, address
):
    withdrawn = goods_in_stock()
    fill_cart(user, (withdrawn, 1))
    withdrawn.on_sale = False
    withdrawn.save()

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 409 and response.json()["code"] == "goods_unavailable"
    trace_id = response["traceresponse"].split("-")[1]
    for name in ("create_order", "query_goods"):
        [span] = wait_until(lambda n=name: exported.spans_named(n, trace_id=trace_id), timeout=10, what=name)
        assert span.status == "UNSET", name
        assert span.attributes["mall.refusal.code"] == "goods_unavailable"
    assert not OrderEvent.objects.exists()


def test_a_fault_is_still_an_error_and_its_order_and_event_are_rolled_back(
    api, user, goods_in_stock, address, settings, spans
):
    fill_cart(user, (goods_in_stock(), 1))
    settings.CHECKOUT_FAIL_STEP = "schedule_timeout"  # after the placed event was written

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 503
    assert not Order.objects.exists() and not OrderEvent.objects.exists()
    create = next(s for s in spans.get_finished_spans() if s.name == "create_order")
    assert create.status.status_code.name == "ERROR"
    assert "mall.refusal.code" not in create.attributes


# --- the API


def test_the_order_shows_its_events_oldest_first(api, placed):
    api.post(f"/api/orders/{placed['id']}/pay/")

    body = api.get(f"/api/orders/{placed['id']}/").json()

    assert [(e["kind"], e["actor"]) for e in body["events"]] == [("placed", "customer"), ("paid", "customer")]
    assert set(body["events"][0]) == {"kind", "at", "actor", "trace_id"}
    assert body["events"][0]["trace_id"] == placed["trace_id"]
    assert body["events"][0]["at"] <= body["events"][1]["at"]


def test_the_order_list_stays_as_cheap_as_before(api, user, goods_in_stock, address):
    goods = goods_in_stock(stock=100)

    def list_queries(orders: int) -> int:
        for _ in range(orders):
            fill_cart(user, (goods, 1))
            assert api.post("/api/orders/", address, format="json").status_code == 201
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/orders/")
        assert response.status_code == 200
        assert all("events" not in order for order in response.json()["results"])
        return len(queries)

    assert list_queries(1) == list_queries(5)


def test_every_order_has_exactly_one_placed_event(api, user, goods_in_stock, address):
    goods = goods_in_stock(stock=100)
    for _ in range(3):
        fill_cart(user, (goods, 1))
        api.post("/api/orders/", address, format="json")

    assert sorted(OrderEvent.objects.filter(kind="placed").values_list("order_id", flat=True)) == sorted(
        Order.objects.values_list("id", flat=True)
    )
