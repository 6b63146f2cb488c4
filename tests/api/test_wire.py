"""OTLP on the wire: a real gunicorn and a real qcluster export to an in-process OTLP receiver.

Also what a trace may carry (sampling, statements without values) and that export never makes a
request wait: a dead or stalled collector costs a checkout nothing, and shutdown flushes.
"""

import re
import time
from collections import Counter
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from django_q.models import Schedule
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context
from rest_framework.authtoken.models import Token

from mall.telemetry import build_sampler
from orders.models import Order
from orders.tracing import CHECKOUT_STEPS
from tests.factories import UserFactory, fill_cart
from tests.support import free_port, qcluster, read_log, shop_env, shop_server, wait_until

PROTOCOLS = ["grpc", "http/protobuf"]
CHECKOUT_SERVER_SPAN = "POST api/orders/"
# The timeout close runs at the first django-q2 scheduler pass after the deadline: ~30 s after start.
CLOSE_WAIT = 90
# A checkout on this machine takes tens of milliseconds; waiting on an exporter would take seconds.
FAST_CHECKOUT = 1.0


def exporting_env(endpoint: str, protocol: str, **overrides: str) -> dict[str, str]:
    """A shop process exporting traces and metrics over OTLP, quickly enough for a test to wait on."""
    settings = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms; the default 5 s would only slow the test down
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "ORDER_PAY_TIMEOUT": "2",
    }
    return shop_env(**{**settings, **overrides})


def wait_for(predicate, *, timeout: float, what: str, log_dir):
    """``wait_until`` that shows the processes' logs when it times out."""
    try:
        return wait_until(predicate, timeout=timeout, interval=0.2, what=what)
    except AssertionError as exc:
        logs = "\n".join(f"--- {name}\n{read_log(log_dir, name)[-3000:]}" for name in ("gunicorn", "qcluster"))
        raise AssertionError(f"{exc}\n{logs}") from None


@pytest.fixture
def shopper(goods_in_stock):
    """A customer with a token and a checked cart of two lines (2 × 12.50 + 1 × 3.20 = 28.20)."""
    customer = UserFactory()
    customer.token = Token.objects.create(user=customer).key
    customer.goods = [goods_in_stock(price="12.50", stock=50), goods_in_stock(price="3.20", stock=50)]
    fill_cart(customer, (customer.goods[0], 2), (customer.goods[1], 1))
    return customer


def postpone_the_safety_net():
    """The every-minute sweep would race the order's own timeout task at the scheduler's first pass (and
    close it as the sweep, not as the timeout): not during this test."""
    Schedule.objects.filter(func="orders.tasks.close_overdue_orders").update(
        next_run=timezone.now() + timedelta(days=1)
    )


def refill_cart(customer):
    fill_cart(customer, (customer.goods[0], 2), (customer.goods[1], 1))


def checkout(base_url: str, customer, address: dict, **headers: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/orders/",
        json=address,
        headers={"Authorization": f"Token {customer.token}", **headers},
        timeout=30,
    )


def single(spans, name):
    matching = [s for s in spans if s.name == name]
    assert len(matching) == 1, f"{len(matching)} spans named {name!r}"
    return matching[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_order_is_followed_on_the_wire_from_checkout_to_timeout_close(
    protocol, otlp_receiver, shopper, address, tmp_path
):
    env = exporting_env(otlp_receiver.endpoint_for(protocol), protocol)
    postpone_the_safety_net()
    # The server first: its start-up then does not compete with the cluster's for the CPU.
    with shop_server(env=env, log_dir=tmp_path) as base_url, qcluster(env=env, log_dir=tmp_path):
        response = checkout(base_url, shopper, address)
        assert response.status_code == 201, response.text
        order = response.json()
        trace_id = order["trace_id"]

        def checkout_trace():
            # The server span ends last: once it is here, the whole trace is (one worker, FIFO export).
            return otlp_receiver.spans_named(CHECKOUT_SERVER_SPAN, trace_id=trace_id) and otlp_receiver.trace(trace_id)

        spans = wait_for(checkout_trace, timeout=30, what="the checkout trace", log_dir=tmp_path)
        assert {s.transport for s in spans} == {"http" if protocol == "http/protobuf" else "grpc"}
        assert {s.resource["service.name"] for s in spans} == {"mall"}

        server = single(spans, CHECKOUT_SERVER_SPAN)
        assert server.kind == "SERVER"
        assert server.attributes.get("http.status_code", server.attributes.get("http.response.status_code")) == 201

        create_order = single(spans, "create_order")
        assert create_order.parent_span_id == server.span_id
        assert create_order.status != "ERROR"
        assert create_order.attributes == {
            "user.id": str(shopper.pk),
            "mall.order.no": order["order_no"],
            "mall.order.id": order["id"],
            "mall.order.line_count": 2,
            "mall.order.pay_price": "28.20",
        }

        steps = [s for s in otlp_receiver.children_of(create_order) if s.kind == "INTERNAL"]
        assert Counter(s.name for s in steps) == Counter(CHECKOUT_STEPS)  # each step exactly once
        for step in steps:
            statements = [s for s in otlp_receiver.children_of(step) if s.kind == "CLIENT"]
            assert statements, f"no DB spans under {step.name}"
            assert all(s.attributes.get("db.system") in {"sqlite", "mysql"} for s in statements)
            assert all(s.attributes.get("db.statement") for s in statements)

        def metrics_of_the_checkout():
            placed = [p for p in otlp_receiver.metric_points("mall.orders.placed") if p.value == 1]
            durations = [p for p in otlp_receiver.metric_points("mall.checkout.duration") if p.count == 1]
            return placed and durations and (placed, durations)

        placed, durations = wait_for(metrics_of_the_checkout, timeout=30, what="checkout metrics", log_dir=tmp_path)
        assert placed[0].attributes == {"outcome": "placed"}
        assert durations[0].attributes == {"outcome": "placed"} and 0 < durations[0].sum < 30
        assert {m.resource["service.name"] for m in otlp_receiver.metrics_named("mall.orders.placed")} == {"mall"}

        def close_of_the_order():
            return [
                s
                for s in otlp_receiver.spans_named("close_unpaid_order")
                if s.attributes.get("mall.order.id") == order["id"]
                and s.attributes.get("mall.order.outcome") == "closed"
            ]

        close = wait_for(close_of_the_order, timeout=CLOSE_WAIT, what="the timeout close span", log_dir=tmp_path)[0]
        assert close.attributes["mall.order.no"] == order["order_no"]
        assert close.resource["service.name"] == "mall"
        # A new trace, linked (not parented) to the checkout that scheduled it.
        assert close.trace_id != trace_id and close.parent_span_id == ""
        assert [(link.trace_id, link.span_id) for link in close.links] == [(trace_id, create_order.span_id)]
        # Closed in a batch: the statements are in the trace of the bucket's task, which the close names.
        (batch,) = otlp_receiver.spans_named(
            "close_due_orders", trace_id=close.attributes["mall.timeout.task_trace_id"]
        )
        close_statements = [s for s in otlp_receiver.children_of(batch) if s.kind == "CLIENT"]
        assert any(s.name == "UPDATE" for s in close_statements)

        closed_by_timeout = wait_for(
            lambda: [
                p for p in otlp_receiver.metric_points("mall.orders.closed") if p.attributes == {"reason": "timeout"}
            ],
            timeout=30,
            what="the worker's mall.orders.closed metric",
            log_dir=tmp_path,
        )
        assert closed_by_timeout[0].value >= 1
    assert Order.objects.get(pk=order["id"]).status == Order.Status.CLOSED


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("collector", ["dead", "stalled"])
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_checkout_never_waits_for_the_collector(collector, protocol, otlp_receiver, shopper, address, tmp_path):
    if collector == "dead":
        endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    else:
        endpoint = otlp_receiver.endpoint_for(protocol)
        otlp_receiver.stall()  # accepts the connection, then holds every export request
    env = exporting_env(endpoint, protocol, OTEL_BSP_SCHEDULE_DELAY="50", OTEL_EXPORTER_OTLP_TIMEOUT="2")
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        durations = []
        for attempt in range(3):
            if attempt:
                refill_cart(shopper)
            started = time.perf_counter()
            response = checkout(base_url, shopper, address)
            durations.append(time.perf_counter() - started)
            assert response.status_code == 201, response.text
        assert max(durations) < FAST_CHECKOUT, durations
        if collector == "stalled":
            otlp_receiver.resume()
            trace_ids = {order.trace_id for order in Order.objects.filter(user=shopper)}
            wait_for(
                lambda: trace_ids <= {s.trace_id for s in otlp_receiver.spans_named("create_order")},
                timeout=30,
                what="the held-up spans to arrive once the collector answers",
                log_dir=tmp_path,
            )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_stopping_the_server_flushes_buffered_spans(otlp_receiver, shopper, address, tmp_path):
    # Batches leave only every 10 minutes (or at 512 spans): whatever arrives was flushed at shutdown.
    env = exporting_env(otlp_receiver.grpc_endpoint, "grpc", OTEL_BSP_SCHEDULE_DELAY="600000")
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        response = checkout(base_url, shopper, address)
        assert response.status_code == 201
        trace_id = response.json()["trace_id"]
        assert otlp_receiver.trace(trace_id) == []
    names = {s.name for s in otlp_receiver.trace(trace_id)}
    assert {CHECKOUT_SERVER_SPAN, "create_order", *CHECKOUT_STEPS} <= names


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_parent_based_ratio_sampling_follows_the_caller_and_drops_the_rest(otlp_receiver, shopper, address, tmp_path):
    env = exporting_env(
        otlp_receiver.grpc_endpoint,
        "grpc",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",  # no root is sampled: only callers' sampled traces are recorded
    )
    caller_trace_id, caller_span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        unsampled = checkout(base_url, shopper, address)
        assert unsampled.status_code == 201
        _, unsampled_trace_id, _, flags = unsampled.headers["traceresponse"].split("-")
        assert not int(flags, 16) & 0x01

        refill_cart(shopper)
        sampled = checkout(base_url, shopper, address, traceparent=f"00-{caller_trace_id}-{caller_span_id}-01")
        assert sampled.status_code == 201
        assert sampled.json()["trace_id"] == caller_trace_id

        server = wait_for(
            lambda: otlp_receiver.spans_named(CHECKOUT_SERVER_SPAN, trace_id=caller_trace_id),
            timeout=30,
            what="the sampled checkout",
            log_dir=tmp_path,
        )[0]
        assert server.parent_span_id == caller_span_id
        # One worker exports in order: the earlier, unsampled checkout would have arrived first.
        assert otlp_receiver.trace(unsampled_trace_id) == []
        assert {s.trace_id for s in otlp_receiver.spans} == {caller_trace_id}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sqlcommenter_appends_one_comment_with_the_traceparent(otlp_receiver, shopper, address, tmp_path):
    env = exporting_env(otlp_receiver.grpc_endpoint, "grpc", MALL_SQLCOMMENTER="1")
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        response = checkout(base_url, shopper, address)
        assert response.status_code == 201
        trace_id = response.json()["trace_id"]
        wait_for(
            lambda: otlp_receiver.spans_named(CHECKOUT_SERVER_SPAN, trace_id=trace_id),
            timeout=30,
            what="the checkout trace",
            log_dir=tmp_path,
        )
    save_order = single(otlp_receiver.trace(trace_id), "save_order")
    inserts = [s for s in otlp_receiver.children_of(save_order) if s.name == "INSERT"]
    # save_order inserts the order and its "placed" event: the order's INSERT is the one checked here.
    [insert] = [s for s in inserts if re.search(r"orders_order\b", s.attributes["db.statement"])]
    statement = insert.attributes["db.statement"]
    assert statement.count("/*") == 1, statement  # one commenter, not Django's and the driver's
    assert f"traceparent='00-{trace_id}-" in statement
    assert "route='api/orders/'" in statement


# --- What a trace may carry (in-process)


@pytest.mark.django_db
def test_checkout_statements_carry_placeholders_not_personal_data(api, user, goods_in_stock, spans):
    goods = goods_in_stock(price="9.99")
    fill_cart(user, (goods, 1))
    personal = {"address": "42 Secret Lane, Hometown", "signer_name": "Grace Hopper", "signer_mobile": "+15559876543"}

    response = api.post("/api/orders/", personal, format="json")

    assert response.status_code == 201
    finished = spans.get_finished_spans()
    save_order = next(s for s in finished if s.name == "save_order")
    insert = next(s for s in finished if s.kind is SpanKind.CLIENT and s.parent.span_id == save_order.context.span_id)
    statement = insert.attributes["db.statement"]
    assert statement.startswith("INSERT INTO") and "orders_order" in statement
    assert "%s" in statement or "?" in statement
    db_attributes = [str(value) for s in finished if s.kind is SpanKind.CLIENT for value in s.attributes.values()]
    for value in (*personal.values(), "5559876543", "9.99"):
        assert not [attribute for attribute in db_attributes if value in attribute], value


def _root_and_child_decisions(sampler, trace_id: int) -> tuple[Decision, Decision]:
    root = sampler.should_sample(None, trace_id, "GET api/goods/", SpanKind.SERVER).decision
    parent = NonRecordingSpan(SpanContext(trace_id, 0x1234, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    child = sampler.should_sample(set_span_in_context(parent), trace_id, "create_order").decision
    return root, child


@pytest.mark.parametrize(
    ("sampler_name", "arg", "expected"),
    [
        ("always_on", None, (Decision.RECORD_AND_SAMPLE, Decision.RECORD_AND_SAMPLE)),
        ("always_off", None, (Decision.DROP, Decision.DROP)),
        ("traceidratio", "0", (Decision.DROP, Decision.DROP)),
        ("parentbased_traceidratio", "0", (Decision.DROP, Decision.RECORD_AND_SAMPLE)),
        ("parentbased_traceidratio", "1", (Decision.RECORD_AND_SAMPLE, Decision.RECORD_AND_SAMPLE)),
    ],
)
def test_the_sampler_is_the_one_named_by_otel_traces_sampler(monkeypatch, sampler_name, arg, expected):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler_name)
    if arg is None:
        monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)

    assert _root_and_child_decisions(build_sampler(), trace_id=0x0AF7651916CD43DD8448EB211C80319C) == expected


def test_orphan_statements_are_dropped_whatever_the_sampler(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    sampler = build_sampler()

    polling = sampler.should_sample(None, 0x5B8EFFF798038103D269B633813FC60C, "SELECT", SpanKind.CLIENT)
    close = sampler.should_sample(None, 0x5B8EFFF798038103D269B633813FC60C, "close_unpaid_order", SpanKind.CONSUMER)

    assert polling.decision is Decision.DROP
    assert close.decision is Decision.RECORD_AND_SAMPLE
