"""The built-in trace store and its staff views (docs/api.md, "Traces").

The store's processor is the real one (a batching processor writing from its own thread); it is
attached to this process's tracer provider for the length of a test (tests/span_forwarding.py).
"""

import os
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from orders.models import Order
from orders.tasks import close_unpaid_order
from orders.tracing import CHECKOUT_STEPS
from tests.factories import TEST_PASSWORD, fill_cart
from tests.span_forwarding import spans_also_to
from tests.support import REPO, wait_until
from traces.models import TraceSpan
from traces.store import TraceStoreExporter, trace_store_processor

pytestmark = pytest.mark.django_db(transaction=True)  # the store writes through its own thread's connection
tracer = trace.get_tracer("tests.trace_store")


@pytest.fixture
def store():
    """The trace store's processor, getting every span this process ends during the test."""
    with spans_also_to(trace_store_processor()) as processor:
        yield processor


@pytest.fixture
def staff_client(staff_user):
    client = Client()
    assert client.login(username=staff_user.username, password=TEST_PASSWORD)
    return client


def checkout(api, user, goods_in_stock, address) -> dict:
    fill_cart(user, (goods_in_stock(stock=20), 2), (goods_in_stock(stock=20), 1))
    response = api.post("/api/orders/", address, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def stored(trace_id: str, *names: str) -> dict[str, TraceSpan]:
    """The stored spans of a trace by name, once all of ``names`` are there."""

    def present():
        by_name = {span.name: span for span in TraceSpan.objects.filter(trace_id=trace_id)}
        return by_name if set(names) <= set(by_name) else None

    return wait_until(present, timeout=15, what=f"spans {names} of trace {trace_id} in the store")


def test_a_checkout_is_stored_as_a_tree_written_off_the_request_path(store, api, user, goods_in_stock, address):
    with CaptureQueriesContext(connection) as queries:
        order = checkout(api, user, goods_in_stock, address)

    assert not [q for q in queries.captured_queries if "traces_tracespan" in q["sql"]]  # not by the request
    spans = stored(order["trace_id"], "POST api/orders/", "create_order", *CHECKOUT_STEPS)
    server, create = spans["POST api/orders/"], spans["create_order"]
    assert (server.kind, server.entry, server.parent_span_id) == ("SERVER", True, "")
    assert (create.parent_span_id, create.entry, create.order_no) == (server.span_id, False, order["order_no"])
    assert create.detail["attributes"]["mall.order.id"] == order["id"]
    assert all(spans[step].parent_span_id == create.span_id for step in CHECKOUT_STEPS)
    assert all(0 < span.duration_ns < 30e9 for span in spans.values())
    assert server.service == "mall"


def test_the_store_does_not_trace_its_own_writes(spans):
    exporter = TraceStoreExporter(retention=3600, max_spans=1000)
    with tracer.start_as_current_span("finished"):
        pass
    finished = list(spans.get_finished_spans())
    spans.clear()

    with tracer.start_as_current_span("a request"):
        TraceSpan.objects.filter(pk=-1).update(name="x")  # control: a statement here is traced
        exporter.export(finished)
        exporter.prune()

    statements = [
        s.attributes.get("db.statement", "")
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CLIENT and "traces_tracespan" in s.attributes.get("db.statement", "")
    ]
    assert len(statements) == 1 and statements[0].startswith("UPDATE")  # only the control
    assert TraceSpan.objects.filter(name="finished").count() == 1  # and the export did write


def test_the_store_prunes_spans_past_its_retention_and_beyond_its_size(spans):
    now = time.time_ns()
    old = [TraceSpan(trace_id="a" * 32, span_id=f"{n:016x}", name="old", kind="INTERNAL", start_ns=now - 120 * 10**9,
                     duration_ns=1) for n in range(3)]  # fmt: skip
    recent = [TraceSpan(trace_id="b" * 32, span_id=f"{n:016x}", name="recent", kind="INTERNAL", start_ns=now,
                        duration_ns=1) for n in range(6)]  # fmt: skip
    TraceSpan.objects.bulk_create(old + recent)
    for name in ("new 1", "new 2"):
        with tracer.start_as_current_span(name):
            pass

    exporter = TraceStoreExporter(retention=60, max_spans=5)
    exporter.export(spans.get_finished_spans())

    names = list(TraceSpan.objects.order_by("id").values_list("name", flat=True))
    assert "old" not in names  # past the retention
    assert len(names) == 5 and names[-2:] == ["new 1", "new 2"]  # the newest, within the size limit


def test_staff_see_a_trace_as_a_waterfall_with_links_between_checkout_and_close(
    store, staff_client, api, user, goods_in_stock, address
):
    order = checkout(api, user, goods_in_stock, address)
    Order.objects.filter(pk=order["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert close_unpaid_order(order["id"], "") == "closed"
    close_trace = Order.objects.get(pk=order["id"]).events.get(kind="closed").trace_id
    stored(order["trace_id"], "create_order", *CHECKOUT_STEPS)
    stored(close_trace, "close_unpaid_order")

    page = staff_client.get(f"/admin/traces/{order['trace_id']}/", secure=True)

    assert page.status_code == 200
    html = page.content.decode()
    shown = re.findall(r'data-span-name="([^"]+)"', html)
    assert shown[0] == "POST api/orders/"  # the root first, then its descendants in tree order
    steps = [name for name in shown if name in CHECKOUT_STEPS]
    assert shown.index("create_order") < shown.index(steps[0]) and sorted(steps) == sorted(CHECKOUT_STEPS)
    assert len(re.findall(r'class="duration">[0-9.]+ ms<', html)) == len(shown)
    assert "<details" in html and "mall.order.no" in html  # attributes on demand
    assert f'href="/admin/traces/{close_trace}/"' in html  # linked from its close

    close_page = staff_client.get(f"/admin/traces/{close_trace}/", secure=True).content.decode()
    assert f'href="/admin/traces/{order["trace_id"]}/#span-' in close_page  # the close links to its checkout


def test_a_failed_step_is_marked_as_an_error(store, staff_client, api, user, goods_in_stock, address, settings):
    fill_cart(user, (goods_in_stock(), 1))
    settings.CHECKOUT_FAIL_STEP = "save_order_goods"
    response = api.post("/api/orders/", address, format="json")
    assert response.status_code == 503
    trace_id = response["traceresponse"].split("-")[1]
    assert stored(trace_id, "save_order_goods")["save_order_goods"].error

    html = staff_client.get(f"/admin/traces/{trace_id}/", secure=True).content.decode()

    assert re.search(r'class="span-row error[^"]*"[^>]*data-span-name="save_order_goods"', html)
    assert "checkout_fault_injected" in html or "CheckoutFaultInjected" in html


def test_recent_traces_filter_by_order_number(store, staff_client, api, user, goods_in_stock, address):
    first = checkout(api, user, goods_in_stock, address)
    second = checkout(api, user, goods_in_stock, address)
    api.post(f"/api/orders/{first['id']}/pay/")
    stored(first["trace_id"], "create_order")
    stored(second["trace_id"], "create_order")
    pay_trace = Order.objects.get(pk=first["id"]).events.get(kind="paid").trace_id
    stored(pay_trace, "pay_order")

    everything = staff_client.get("/admin/traces/", secure=True).content.decode()
    of_first = staff_client.get(f"/admin/traces/?order_no={first['order_no']}", secure=True).content.decode()

    def listed(html):
        return set(re.findall(r'href="/admin/traces/([0-9a-f]{32})/"', html))

    assert {first["trace_id"], second["trace_id"], pay_trace} <= listed(everything)
    assert listed(of_first) == {first["trace_id"], pay_trace}


def test_an_unknown_or_malformed_trace_is_a_404(staff_client):
    assert staff_client.get(f"/admin/traces/{'0' * 32}/", secure=True).status_code == 404
    assert staff_client.get("/admin/traces/not-a-trace/", secure=True).status_code == 404


def settings_of(**env) -> str:
    """MALL_TRACE_STORE as a fresh process with ``env`` reads it (or its one-line error)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MALL_TRACE_STORE"))}
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.MALL_TRACE_STORE)"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "mall.settings", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return (result.stdout.strip() or result.stderr.strip().splitlines()[-1]) if result.stdout or result.stderr else ""


@pytest.mark.django_db(transaction=False)
def test_the_store_is_on_by_default_only_when_no_collector_is_configured():
    assert settings_of() == "True"
    assert settings_of(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317") == "False"
    assert settings_of(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317", MALL_TRACE_STORE="on") == "True"
    assert settings_of(MALL_TRACE_STORE="off") == "False"
    assert "MALL_TRACE_STORE must be on or off" in settings_of(MALL_TRACE_STORE="maybe")


def test_the_admin_index_leads_to_the_recent_traces(staff_client):
    index = staff_client.get("/admin/", secure=True).content.decode()
    assert 'href="/admin/traces/tracespan/"' in index

    response = staff_client.get("/admin/traces/tracespan/", secure=True)

    assert response.status_code == 302 and response["Location"] == "/admin/traces/"
