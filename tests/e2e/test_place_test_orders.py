"""place_test_orders: in-process and as a real HTTP client of a running shop, traced across both."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from opentelemetry.trace import SpanKind

from carts.models import CartItem
from mall.telemetry.links import trace_url
from orders.models import Order, OrderLine
from tests.support import free_port, read_log, shop_env, shop_server, wait_until
from traces.models import TraceSpan

PASSWORD = "loadgen-test-password"
CHECKOUT_SERVER_SPAN = "POST api/orders/"


def seed_shop(*, goods: int = 6, stock: int = 500, users: int = 2) -> None:
    call_command("seed_demo", goods=goods, stock=stock, users=users, password=PASSWORD, stdout=StringIO())


def place_test_orders(**options) -> dict:
    """Run the command with --json; returns the summary it printed."""
    out = StringIO()
    call_command(
        "place_test_orders", json=True, quiet=True, password=PASSWORD, stdout=out, stderr=StringIO(), **options
    )
    return json.loads(out.getvalue())


@pytest.fixture
def passwords_the_shop_can_check(settings):
    """Users made here must log in to a shop process, whose hashers do not include the suite's fast MD5."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.ScryptPasswordHasher"]


@pytest.fixture
def loadgen_exports_to(monkeypatch):
    """Point the load tool's own tracer provider (built per run from OTEL_*) at an OTLP endpoint."""

    def point(endpoint: str) -> None:
        for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")

    return point


# --- in-process


@pytest.mark.django_db(transaction=True)  # the orders are placed on threads with their own connections
def test_in_process_orders_placed_are_the_summarys_count():
    seed_shop(users=3)

    summary = place_test_orders(orders=12, concurrency=3, users=3, lines=2, pay_ratio=0.5, seed=7)

    assert summary["mode"] == "in-process"
    assert summary["placed"] == 12 == Order.objects.count()
    assert summary["rejected"] == {} and summary["failed"] == 0
    assert summary["paid"] == Order.objects.filter(status=Order.Status.PAID).count()
    assert 0 < summary["paid"] < 12
    # Each order holds exactly the L lines planned for it: the seeded cart lines were cleared first.
    assert {order.lines.count() for order in Order.objects.all()} == {2}
    assert set(summary["latency_ms"]) == {"p50", "p95", "p99"}
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] <= summary["latency_ms"]["p99"]
    assert summary["orders_per_s"] > 0
    samples = summary["sample_traces"]
    assert len(samples) == 5
    assert all(s["url"] == trace_url(s["trace_id"]) for s in samples)  # tests/e2e/test_place_test_orders_links.py
    assert {s["trace_id"] for s in samples} <= set(Order.objects.values_list("trace_id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_in_process_each_order_is_a_root_span_over_its_checkout(spans):
    seed_shop()

    place_test_orders(orders=4, concurrency=2, users=2, pay_ratio=1.0)

    finished = spans.get_finished_spans()
    roots = {span.context.span_id: span for span in finished if span.name == "place_test_order"}
    assert len(roots) == 4
    assert all(root.parent is None for root in roots.values())
    checkouts = [span for span in finished if span.name == "create_order"]
    assert len(checkouts) == 4
    assert all(checkout.parent.span_id in roots for checkout in checkouts)
    root_trace_ids = {format(root.context.trace_id, "032x") for root in roots.values()}
    assert set(Order.objects.values_list("trace_id", flat=True)) == root_trace_ids
    assert {root.attributes["mall.loadgen.outcome"] for root in roots.values()} == {"placed"}


@pytest.mark.django_db(transaction=True)
def test_refusals_are_counted_by_code_and_do_not_fail_the_run():
    seed_shop(goods=2, stock=3, users=2)  # sold out after a few orders of both goods

    summary = place_test_orders(orders=6, concurrency=1, users=2, lines=2, pay_ratio=0)

    assert summary["placed"] == Order.objects.count() >= 1
    assert summary["rejected"]["insufficient_stock"] == 6 - summary["placed"] >= 3
    assert summary["failed"] == 0
    # A refused order's lines are cleared before the user's next fill: carts never pile up.
    assert max(CartItem.objects.values_list("nums", flat=True)) <= 3
    assert sum(OrderLine.objects.values_list("nums", flat=True)) <= 2 * 3


@pytest.mark.django_db(transaction=True)
def test_the_human_summary_shows_counts_latency_and_trace_links(settings):
    settings.JAEGER_UI_URL = "http://jaeger.example:16686"
    seed_shop()
    out = StringIO()

    call_command("place_test_orders", orders=3, users=2, quiet=True, stdout=out, stderr=StringIO())

    text = out.getvalue()
    assert "Placed 3 of 3 orders" in text
    assert "Rejected: none" in text and "Failed:   none" in text
    assert "p50" in text and "p99" in text and "orders/s" in text
    assert text.count("http://jaeger.example:16686/trace/") == 3


@pytest.mark.django_db
def test_a_run_without_the_demo_users_explains_what_to_do():
    with pytest.raises(CommandError, match="seed_demo --users 2"):
        place_test_orders(orders=1, users=2)


def test_impossible_options_are_refused():
    with pytest.raises(CommandError, match="pay-ratio"):
        place_test_orders(pay_ratio=1.5)
    with pytest.raises(CommandError, match="at least 1"):
        place_test_orders(orders=0)


# --- HTTP, against a real gunicorn


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the shop process must see the seeded data
def test_http_orders_match_the_summary_and_one_trace_spans_the_load_tool_and_the_shop(
    otlp_receiver, loadgen_exports_to, passwords_the_shop_can_check, tmp_path
):
    seed_shop(users=2)
    loadgen_exports_to(otlp_receiver.grpc_endpoint)
    env = shop_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.grpc_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        summary = place_test_orders(url=base_url, orders=6, concurrency=2, users=2, lines=2, pay_ratio=0.5)

        orders = list(Order.objects.all())
        assert summary["mode"] == "http" and summary["url"] == base_url
        assert summary["placed"] == len(orders) == 6
        assert summary["paid"] == sum(order.status == Order.Status.PAID for order in orders)

        # The load tool's spans were flushed before the command returned.
        client_spans = [s for s in otlp_receiver.spans_named("POST /api/orders/") if s.kind == SpanKind.CLIENT.name]
        assert len(client_spans) == 6
        assert {s.resource["service.name"] for s in client_spans} == {"mall-loadgen"}
        assert {order.trace_id for order in orders} == {s.trace_id for s in client_spans}
        assert {s["trace_id"] for s in summary["sample_traces"]} <= {s.trace_id for s in client_spans}

        def shop_server_spans():
            found = {
                s.parent_span_id: s
                for s in otlp_receiver.spans_named(CHECKOUT_SERVER_SPAN)
                if s.resource.get("service.name") == "mall"
            }
            return found if len(found) >= 6 else None

        try:
            server_by_parent = wait_until(shop_server_spans, timeout=30, what="the shop's checkout spans")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{read_log(tmp_path, 'gunicorn')[-3000:]}") from None
        for client in client_spans:
            server = server_by_parent[client.span_id]  # the shop's server span is the client span's child
            assert server.trace_id == client.trace_id
            assert otlp_receiver.spans_named("create_order", trace_id=client.trace_id)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_http_a_failing_shop_makes_the_command_exit_non_zero(passwords_the_shop_can_check, tmp_path):
    seed_shop(users=1)
    env = shop_env(CHECKOUT_FAIL_STEP="save_order", MALL_ALLOW_FAULT_INJECTION="1")  # every checkout: 503
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        out = StringIO()
        with pytest.raises(CommandError, match="3 of 3 orders"):
            call_command(
                "place_test_orders",
                url=base_url,
                orders=3,
                users=1,
                password=PASSWORD,
                json=True,
                quiet=True,
                stdout=out,
                stderr=StringIO(),
            )

    summary = json.loads(out.getvalue())  # the figures are printed before the command fails
    assert summary["placed"] == 0 == Order.objects.count()
    assert summary["failed"] == 3
    assert summary["failures"] == {"http_503": 3}


def test_http_a_shop_that_does_not_answer_makes_the_command_exit_non_zero():
    closed_port_url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(CommandError, match="ConnectionError"):
        place_test_orders(url=closed_port_url, orders=1, users=1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the shop process and the store's writer thread see the same rows
def test_http_with_the_store_on_each_stored_trace_has_the_clients_root_over_the_shops_spans(
    settings, monkeypatch, passwords_the_shop_can_check, client, tmp_path
):
    """The load tool's spans and the shop's land in one store (same database): /admin/traces/<id>/ shows the
    ``place_test_order`` root, its client span, and the shop's server span and checkout under it."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)  # the store only: no collector
    settings.MALL_TRACE_STORE, settings.JAEGER_UI_URL = True, ""
    seed_shop(users=2)

    with shop_server(env=shop_env(MALL_TRACE_STORE="on"), log_dir=tmp_path) as base_url:
        summary = place_test_orders(url=base_url, orders=3, concurrency=2, users=2, lines=1, pay_ratio=0)
        orders = list(Order.objects.all())
        assert summary["placed"] == len(orders) == 3

        def stored_checkouts():
            traces = {order.trace_id: TraceSpan.objects.filter(trace_id=order.trace_id) for order in orders}
            complete = all(spans.filter(name="create_order").exists() for spans in traces.values())
            return complete and {trace_id: list(spans) for trace_id, spans in traces.items()}

        try:
            stored = wait_until(stored_checkouts, timeout=30, what="the shop's spans in the store")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{read_log(tmp_path, 'gunicorn')[-3000:]}") from None

    for trace_id, spans in stored.items():
        by_id = {span.span_id: span for span in spans}
        (root,) = [span for span in spans if span.name == "place_test_order"]
        assert root.parent_span_id == "" and root.service == "mall-loadgen"
        (client_span,) = [s for s in spans if s.name == "POST /api/orders/" and s.kind == SpanKind.CLIENT.name]
        assert client_span.parent_span_id == root.span_id
        (server,) = [s for s in spans if s.name == CHECKOUT_SERVER_SPAN]
        assert server.service == "mall" and server.parent_span_id == client_span.span_id
        (checkout,) = [s for s in spans if s.name == "create_order"]
        assert by_id[checkout.parent_span_id] == server
        assert [s.name for s in spans if s.parent_span_id and s.parent_span_id not in by_id] == [], trace_id

    samples = summary["sample_traces"]
    assert samples and all(s["url"] == f"{base_url}/admin/traces/{s['trace_id']}/" for s in samples)
    client.force_login(get_user_model().objects.create_superuser("trace-reader", password="x-unused-123"))
    page = client.get(f"/admin/traces/{orders[0].trace_id}/")
    assert page.status_code == 200
    assert b"place_test_order" in page.content and CHECKOUT_SERVER_SPAN.encode() in page.content
