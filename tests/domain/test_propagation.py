"""W3C trace context at the edge: an incoming ``traceparent`` is continued, every response names its trace."""

import re

import pytest
from opentelemetry.trace import SpanKind, TraceFlags
from rest_framework.test import APIClient

from tests.factories import fill_cart

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACERESPONSE = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<span_id>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})$"
)


def parse_traceresponse(response) -> dict:
    """The ``traceresponse`` header's fields, with ``flags`` as an int (the SDK sends 03, not 01)."""
    match = TRACERESPONSE.match(response["traceresponse"])
    assert match, response["traceresponse"]
    fields = match.groupdict()
    fields["flags"] = int(fields["flags"], 16)
    return fields


def server_span(spans):
    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    return server


def traceparent(*, sampled: bool = True) -> str:
    return f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-{'01' if sampled else '00'}"


@pytest.mark.django_db
def test_a_request_with_a_traceparent_continues_the_callers_trace(api, goods_in_stock, spans):
    goods_in_stock()

    response = api.get("/api/goods/", HTTP_TRACEPARENT=traceparent())

    assert response.status_code == 200
    server = server_span(spans)
    assert format(server.context.trace_id, "032x") == CALLER_TRACE_ID
    assert format(server.parent.span_id, "016x") == CALLER_SPAN_ID
    assert server.parent.is_remote
    assert parse_traceresponse(response)["trace_id"] == CALLER_TRACE_ID


@pytest.mark.django_db
def test_a_checkout_called_with_a_traceparent_is_recorded_in_the_callers_trace(
    api, user, goods_in_stock, address, spans
):
    fill_cart(user, (goods_in_stock(), 1))

    response = api.post("/api/orders/", address, format="json", HTTP_TRACEPARENT=traceparent())

    assert response.status_code == 201
    assert response.data["trace_id"] == CALLER_TRACE_ID
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert finished["create_order"].parent.span_id == server_span(spans).context.span_id
    assert {format(s.context.trace_id, "032x") for s in finished.values()} == {CALLER_TRACE_ID}


@pytest.mark.django_db
def test_a_caller_that_did_not_sample_is_not_overruled_but_still_gets_the_trace_id(api, goods_in_stock, spans):
    goods_in_stock()

    response = api.get("/api/goods/", HTTP_TRACEPARENT=traceparent(sampled=False))

    assert response.status_code == 200
    assert spans.get_finished_spans() == ()  # parent-based sampling (the SDK default) follows the caller
    sent = parse_traceresponse(response)
    assert sent["trace_id"] == CALLER_TRACE_ID
    assert not sent["flags"] & TraceFlags.SAMPLED


@pytest.fixture
def order_of_other_user(other_user, goods_in_stock, address):
    from orders.checkout import create_order

    fill_cart(other_user, (goods_in_stock(), 1))
    return create_order(user=other_user, **address).order


EVERY_KIND_OF_API_RESPONSE = [
    ("get", "/api/goods/", 200),
    ("get", "/api/goods/999999/", 404),
    ("delete", "/api/goods/", 405),
    ("post", "/api/orders/", 400),  # the cart is empty
    ("get", "/api/orders/{other_order}/", 404),
    ("post", "/api/orders/{other_order}/pay/", 404),
    ("get", "/api/cart/", 200),
    ("get", "/api/schema/", 200),
    ("get", "/api/no-such-endpoint/", 404),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "status"), EVERY_KIND_OF_API_RESPONSE)
def test_every_api_response_has_a_traceresponse_naming_its_server_span(
    api, address, order_of_other_user, spans, method, path, status
):
    spans.clear()
    data = address if method == "post" and path == "/api/orders/" else None

    response = getattr(api, method)(path.format(other_order=order_of_other_user.pk), data, format="json")

    assert response.status_code == status
    sent = parse_traceresponse(response)
    server = server_span(spans)
    assert sent["version"] == "00"
    assert sent["trace_id"] == format(server.context.trace_id, "032x")
    assert sent["span_id"] == format(server.context.span_id, "016x")
    assert sent["flags"] & TraceFlags.SAMPLED


@pytest.mark.django_db
def test_an_unauthenticated_request_gets_a_traceresponse_too(spans):
    response = APIClient().post("/api/orders/", {}, format="json")

    assert response.status_code == 401
    assert parse_traceresponse(response)["trace_id"] == format(server_span(spans).context.trace_id, "032x")


@pytest.mark.django_db
def test_a_new_order_returns_the_trace_id_of_its_checkout(api, user, goods_in_stock, address, spans):
    fill_cart(user, (goods_in_stock(), 1))

    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 201
    assert response.data["trace_id"] == parse_traceresponse(response)["trace_id"]
    create_order = next(s for s in spans.get_finished_spans() if s.name == "create_order")
    assert response.data["trace_id"] == format(create_order.context.trace_id, "032x")
