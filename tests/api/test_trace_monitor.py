"""The monitor and the explained trace as JSON and as admin pages (contract v3: /api/traces/operations/,
/api/traces/<trace_id>/, /admin/traces/monitor/, /admin/traces/<trace_id>/).

Checkouts run through the real API in process; their finished spans are written to the store by the
store's own exporter, as the shop's BatchSpanProcessor would."""

import json
import re
from datetime import datetime

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from mall.roles import ensure_staff_roles
from orders.tracing import CHECKOUT_STEPS, CREATE_ORDER, PAY_ORDER
from tests.factories import UserFactory, fill_cart
from traces.models import TraceSpan
from traces.store import COLUMNS, span_row

pytestmark = pytest.mark.django_db

OPERATIONS = "/api/traces/operations/"
HOUR_NS = 3600 * 10**9


def store(spans) -> None:
    """Write the spans finished so far to the trace store (the rows its exporter writes), then forget them.

    Through the ORM rather than the exporter: the exporter's own connection handling would close the
    test's transaction."""
    rows = [dict(zip(COLUMNS, span_row(span), strict=True)) for span in spans.get_finished_spans()]
    TraceSpan.objects.bulk_create(TraceSpan(**(row | {"detail": json.loads(row["detail"])})) for row in rows)
    spans.clear()


@pytest.fixture
def support_user(db):
    ensure_staff_roles()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def support_api(client_for, support_user):
    return client_for(support_user)


@pytest.fixture
def support_client(support_user):
    client = Client()
    client.force_login(support_user)
    return client


def checkout(api, user, goods, address) -> dict:
    fill_cart(user, (goods, 1))
    response = api.post("/api/orders/", address, format="json", secure=True)
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def shop_history(spans, api, user, goods_in_stock, address):
    """Three checkouts (one paid) and one refusal in the last minutes; one checkout two hours ago."""
    goods = goods_in_stock(stock=50)
    old = checkout(api, user, goods, address)
    store(spans)
    TraceSpan.objects.filter(trace_id=old["trace_id"]).update(start_ns=TraceSpan.objects.get(
        trace_id=old["trace_id"], name=CREATE_ORDER).start_ns - 2 * HOUR_NS)  # fmt: skip
    placed = [checkout(api, user, goods, address) for _ in range(3)]
    assert api.post(f"/api/orders/{placed[0]['id']}/pay/", secure=True).status_code == 200
    refused = api.post("/api/orders/", address, format="json", secure=True)  # the cart is empty now
    assert refused.status_code == 400 and refused.json()["code"] == "cart_empty"
    store(spans)
    return {"placed": placed, "old": old}


def by_name(answer: dict) -> dict:
    return {operation["name"]: operation for operation in answer["operations"]}


def test_the_operations_json_counts_exactly_the_checkouts_of_its_window(support_api, shop_history):
    response = support_api.get(OPERATIONS, secure=True)
    assert response.status_code == 200
    answer = response.json()
    assert answer["window"] == 3600
    operations = by_name(answer)
    assert operations[CREATE_ORDER]["count"] == 4  # three placed and the refused one; not the old checkout
    assert operations[CREATE_ORDER]["refusals"] == 1 and operations[CREATE_ORDER]["errors"] == 0
    assert operations["select_shopcart"]["count"] == 4 and operations["select_shopcart"]["refusals"] == 1
    for step in set(CHECKOUT_STEPS) - {"select_shopcart"}:
        assert operations[step]["count"] == 3, step
        assert operations[step]["refusals"] == 0 and operations[step]["errors"] == 0
    assert operations["POST api/orders/"]["count"] == 4 and operations["POST api/orders/"]["refusals"] == 1
    assert operations[PAY_ORDER]["count"] == 1
    assert not any(name.split()[0] in {"SELECT", "INSERT", "UPDATE", "DELETE"} for name in operations)
    create_order = operations[CREATE_ORDER]
    assert create_order["per_minute"] == pytest.approx(4 / 60, abs=0.001)
    assert 0 < create_order["p50_ms"] <= create_order["p95_ms"] <= create_order["p99_ms"]
    assert set(create_order) == {"name", "count", "errors", "refusals", "p50_ms", "p95_ms", "p99_ms", "per_minute"}

    day = by_name(support_api.get(OPERATIONS, {"window": 86400}, secure=True).json())
    assert day[CREATE_ORDER]["count"] == 5  # the old checkout too
    assert support_api.get(OPERATIONS, {"window": 900}, secure=True).json()["window"] == 900


@pytest.mark.parametrize("window", ["abc", "0", "59", "86401", "-60", "1e3", "3600.5", ""])
def test_a_bad_window_is_a_400_invalid(support_api, window):
    response = support_api.get(OPERATIONS + f"?window={window}", secure=True)
    if window == "":  # an empty value is the default, as a form without a choice sends it
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def staff_without_traces():
    return UserFactory(is_staff=True)


@pytest.mark.parametrize("url", [OPERATIONS, "/api/traces/0123456789abcdef0123456789abcdef/"])
def test_only_staff_who_may_view_traces_get_the_json(client_for, url, support_api):
    anonymous = Client().get(url, secure=True)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    assert client_for(staff_without_traces()).get(url, secure=True).status_code == 403
    assert client_for(UserFactory()).get(url, secure=True).status_code == 403
    assert support_api.get(url, secure=True).status_code in (200, 404)  # 404: no such trace in the store


def test_the_trace_json_has_every_span_with_its_self_time(support_api, shop_history):
    order = shop_history["placed"][1]
    response = support_api.get(f"/api/traces/{order['trace_id']}/", secure=True)
    assert response.status_code == 200
    answer = response.json()
    assert answer["trace_id"] == order["trace_id"]
    spans = answer["spans"]
    assert spans[0]["name"] == "POST api/orders/" and spans[0]["kind"] == "SERVER" and spans[0]["parent_span_id"] == ""
    names = [span["name"] for span in spans]
    assert names.count(CREATE_ORDER) == 1 and all(names.count(step) == 1 for step in CHECKOUT_STEPS)
    fields = {"span_id", "parent_span_id", "name", "kind", "service", "start", "duration_ms", "self_ms", "error"}
    assert all(fields | {"attributes", "events", "links"} == set(span) for span in spans)
    ids = {span["span_id"] for span in spans}
    assert all(span["parent_span_id"] in ids for span in spans[1:])
    for span in spans:
        assert 0 <= span["self_ms"] <= span["duration_ms"]
        assert datetime.fromisoformat(span["start"]).utcoffset().total_seconds() == 0
    create_order = next(span for span in spans if span["name"] == CREATE_ORDER)
    assert create_order["attributes"]["mall.order.no"] == order["order_no"]
    steps = [span for span in spans if span["parent_span_id"] == create_order["span_id"]]
    # Steps run one after the other: create_order's own time is what they leave.
    assert create_order["self_ms"] == pytest.approx(
        create_order["duration_ms"] - sum(step["duration_ms"] for step in steps), abs=0.01
    )
    upper = support_api.get(f"/api/traces/{order['trace_id'].upper()}/", secure=True)
    assert upper.status_code == 200 and upper.json()["trace_id"] == order["trace_id"]


def test_an_unknown_trace_is_a_404_json(support_api):
    response = support_api.get("/api/traces/ffffffffffffffffffffffffffffffff/", secure=True)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert support_api.get("/api/traces/not-a-trace/", secure=True).json()["code"] == "not_found"


def test_the_monitor_page_has_a_row_and_a_chart_per_operation(support_client, shop_history):
    response = support_client.get("/admin/traces/monitor/", secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    rows = re.findall(r'<tr class="row[12] operation" data-operation="([^"]+)"', html)
    assert CREATE_ORDER in rows and set(CHECKOUT_STEPS) <= set(rows)
    assert html.count('<svg class="latency-chart"') == len(rows)
    assert 'href="/admin/traces/?operation=create_order&amp;sort=duration"' in html
    assert "/admin/traces/?operation=POST+api%2Forders%2F&amp;sort=duration" in html
    day = support_client.get("/admin/traces/monitor/?window=86400", secure=True)
    assert day.status_code == 200 and "<strong>24 hours</strong>" in day.content.decode()


def test_the_monitor_page_refuses_a_bad_window_and_staff_without_the_permission(support_client):
    response = support_client.get("/admin/traces/monitor/?window=forever", secure=True)
    assert response.status_code == 400 and "window is a whole number of seconds" in response.content.decode()
    staff = Client()
    staff.force_login(staff_without_traces())
    assert staff.get("/admin/traces/monitor/", secure=True).status_code == 403
    assert Client().get("/admin/traces/monitor/", secure=True).status_code == 302  # to the admin's log-in


def test_the_trace_page_marks_the_critical_path_and_spans_above_their_p95(support_client, shop_history):
    order = shop_history["placed"][2]
    # Make this checkout's save_order the slowest of the hour: above the p95 of its operation.
    save_order = TraceSpan.objects.get(trace_id=order["trace_id"], name="save_order")
    TraceSpan.objects.filter(pk=save_order.pk).update(duration_ns=save_order.duration_ns + 10**9)
    html = support_client.get(f"/admin/traces/{order['trace_id']}/", secure=True).content.decode()
    row = re.compile(r'<div class="span-row([^"]*)" id="span-[0-9a-f]+" data-span-name="([^"]+)"')
    rows = {name: classes.split() for classes, name in row.findall(html)}
    assert "critical" in rows["POST api/orders/"] and "critical" in rows[CREATE_ORDER]
    assert "above-p95" in rows["save_order"]
    assert "p95 of the last hour" in html and "self " in html
    assert '<pre class="sql">' in html  # db.statement in monospace across the width
