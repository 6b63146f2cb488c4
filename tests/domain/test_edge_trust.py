"""MALL_TRACEPARENT at the edge: ``trust`` continues a caller's trace; ``link`` starts the shop's own trace,
sampled by the shop's sampler, with a span link to the caller (HTTP through Django, and gRPC)."""

from concurrent import futures

import grpc
import pytest
from django.test import Client
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.trace import SpanKind, TraceFlags

from mall.telemetry import grpc_server_interceptor
from mall.telemetry.edge_context import LINK_ATTRIBUTES
from tests.domain.test_propagation import (
    CALLER_SPAN_ID,
    CALLER_TRACE_ID,
    parse_traceresponse,
    server_span,
    traceparent,
)
from tests.factories import fill_cart

REQUESTS = 1000


@pytest.fixture
def ten_percent_sampling(monkeypatch):
    """The README's production sampler (parentbased_traceidratio 0.1) in place of the test run's always-on."""
    sampler = trace.get_tracer_provider().sampler  # DropOrphanDbSpans, shared by every tracer of the provider
    monkeypatch.setattr(sampler, "_delegate", ParentBasedTraceIdRatio(0.1))


@pytest.fixture
def link_mode(settings):
    settings.MALL_TRACEPARENT = "link"


def sampled_answers(client: Client, count: int) -> int:
    """Send ``count`` requests with a sampled caller header; return how many the shop sampled."""
    sampled = 0
    for _ in range(count):
        response = client.get("/api/", HTTP_TRACEPARENT=traceparent(sampled=True))
        assert response.status_code == 200
        sampled += bool(parse_traceresponse(response)["flags"] & TraceFlags.SAMPLED)
    return sampled


def test_under_link_a_sampled_header_is_kept_at_the_shops_own_ratio(link_mode, ten_percent_sampling, spans):
    sampled = sampled_answers(Client(), REQUESTS)

    assert 0.05 * REQUESTS <= sampled <= 0.16 * REQUESTS, sampled
    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(servers) == sampled
    assert all(format(s.context.trace_id, "032x") != CALLER_TRACE_ID for s in servers)


def test_under_trust_a_sampled_header_forces_sampling(settings, ten_percent_sampling, spans):
    settings.MALL_TRACEPARENT = "trust"
    assert sampled_answers(Client(), 50) == 50  # today's behaviour, for internal callers and the load tool
    assert {format(s.context.trace_id, "032x") for s in spans.get_finished_spans()} == {CALLER_TRACE_ID}


@pytest.mark.django_db
def test_under_link_a_checkout_stores_the_shops_trace_id_and_links_to_the_caller(
    link_mode, api, user, goods_in_stock, address, spans
):
    from orders.models import Order

    fill_cart(user, (goods_in_stock(), 1))

    response = api.post("/api/orders/", address, format="json", HTTP_TRACEPARENT=traceparent())

    assert response.status_code == 201
    server = server_span(spans)
    own_trace_id = format(server.context.trace_id, "032x")
    assert own_trace_id != CALLER_TRACE_ID
    assert server.parent is None  # a root: the caller is no parent
    assert Order.objects.get(pk=response.data["id"]).trace_id == own_trace_id
    assert response.data["trace_id"] == own_trace_id == parse_traceresponse(response)["trace_id"]
    (link,) = server.links
    assert format(link.context.trace_id, "032x") == CALLER_TRACE_ID
    assert format(link.context.span_id, "016x") == CALLER_SPAN_ID
    assert dict(link.attributes) == LINK_ATTRIBUTES
    children = [s for s in spans.get_finished_spans() if s is not server]
    assert {format(s.context.trace_id, "032x") for s in children} == {own_trace_id}


@pytest.mark.django_db
def test_under_link_a_request_without_a_header_has_no_link(link_mode, api, goods_in_stock, spans):
    goods_in_stock()

    assert api.get("/api/goods/").status_code == 200

    assert server_span(spans).links == ()


@pytest.mark.django_db
def test_under_trust_a_checkout_continues_the_callers_trace_without_a_link(
    settings, api, user, goods_in_stock, address, spans
):
    settings.MALL_TRACEPARENT = "trust"
    fill_cart(user, (goods_in_stock(), 1))

    response = api.post("/api/orders/", address, format="json", HTTP_TRACEPARENT=traceparent())

    assert response.data["trace_id"] == CALLER_TRACE_ID
    server = server_span(spans)
    assert format(server.parent.span_id, "016x") == CALLER_SPAN_ID
    assert server.links == ()


@pytest.fixture
def echo_server():
    """An in-process gRPC server with the shop's server interceptor and one method that echoes its bytes."""
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[grpc_server_interceptor()])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Echo", {"Ping": echo})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary("/test.Echo/Ping")
    server.stop(grace=None)


@pytest.mark.parametrize("mode", ["trust", "link"])
def test_a_grpc_call_follows_the_same_mode(settings, echo_server, spans, mode):
    settings.MALL_TRACEPARENT = mode

    assert echo_server(b"hello", metadata=(("traceparent", traceparent()),), timeout=10) == b"hello"

    server = server_span(spans)
    continued = format(server.context.trace_id, "032x") == CALLER_TRACE_ID
    assert continued == (mode == "trust")
    if mode == "link":
        (link,) = server.links
        assert format(link.context.span_id, "016x") == CALLER_SPAN_ID
        assert server.parent is None
    else:
        assert server.links == ()
