"""The trace search, as JSON (``GET /api/traces/``, contract v3) and who may use it.

The stored traces are written as rows (the store's own writing is tested in tests/domain/test_trace_store.py),
so each filter is checked against traces whose every field the test chose.
"""

import itertools
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from mall.roles import ensure_staff_roles
from tests.factories import UserFactory
from traces.models import TraceSpan

pytestmark = pytest.mark.django_db

URL = "/api/traces/"
NOW_NS = time.time_ns()
_ids = itertools.count(1)


def trace(
    root="POST api/orders/", *, children=(), ago_s=10.0, duration_ms=20.0, order_no="", error_in="", refusal="",
    remote_parent=False, service="mall",
) -> str:  # fmt: skip
    """Store a trace: an entry span ``root`` and ``children`` under it; returns its trace id."""
    trace_id = f"{next(_ids):032x}"
    start = NOW_NS - int(ago_s * 1e9)
    root_id = f"{next(_ids):016x}"
    rows = [
        TraceSpan(
            trace_id=trace_id, span_id=root_id, parent_span_id="ab" * 8 if remote_parent else "", entry=True,
            name=root, kind="SERVER", service=service, start_ns=start, duration_ns=int(duration_ms * 1e6),
            error=error_in == root, outcome="error" if error_in else "refusal" if refusal else "ok",
        )
    ]  # fmt: skip
    for number, name in enumerate(children):
        rows.append(
            TraceSpan(
                trace_id=trace_id, span_id=f"{next(_ids):016x}", parent_span_id=root_id, name=name, kind="INTERNAL",
                service=service, start_ns=start + number * 1000, duration_ns=1000, error=error_in == name,
                order_no=order_no if name == "create_order" else "",
                refusal_code=refusal if name == "create_order" else "",
            )
        )  # fmt: skip
    TraceSpan.objects.bulk_create(rows)
    return trace_id


def may_view_traces():
    ensure_staff_roles()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def support():
    return may_view_traces()


def found(client, **params) -> list[str]:
    response = client.get(URL, params, secure=True)
    assert response.status_code == 200, response.content
    return [result["trace_id"] for result in response.json()["results"]]


def test_anonymous_callers_are_refused(client):
    response = client.get(URL, secure=True)
    assert response.status_code in (401, 403)
    assert response.json()["code"] in ("not_authenticated", "permission_denied")


def test_staff_without_the_view_permission_are_refused():
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_order", "change_order"]))
    client = Client()
    client.force_login(clerk)
    response = client.get(URL, secure=True)
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_a_token_caller_with_the_support_role_gets_the_results_as_the_contract_says(client_for):
    ensure_staff_roles()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    checkout = trace(children=["create_order", "save_order"], order_no="N1", ago_s=5, duration_ms=12.5)

    response = client_for(type(user).objects.get(pk=user.pk)).get(URL)

    assert response.status_code == 200
    (result,) = response.json()["results"]
    start = datetime.fromisoformat(result.pop("start"))
    assert abs(start - datetime.now(UTC)) < timedelta(seconds=60)
    assert result == {
        "trace_id": checkout,
        "root": {"name": "POST api/orders/", "service": "mall"},
        "duration_ms": 12.5,
        "span_count": 3,
        "outcome": "ok",
        "order_no": "N1",
    }


def test_operation_matches_the_root_or_any_span_of_the_trace(support):
    checkout = trace(children=["create_order", "query_goods"])
    close = trace("close_unpaid_order", children=["SELECT"])
    trace("GET api/goods/", children=["SELECT"])

    assert found(support, operation="query_goods") == [checkout]
    assert found(support, operation="close_unpaid_order") == [close]
    assert found(support, operation="POST api/orders/") == [checkout]
    assert found(support, operation="no_such_span") == []


def test_order_no_finds_every_trace_of_the_order(support):
    placed = trace(children=["create_order"], order_no="N-7", ago_s=30)
    paid = trace("POST api/orders/{pk}/pay/", children=["create_order"], order_no="N-7", ago_s=20)
    trace(children=["create_order"], order_no="N-8")

    assert found(support, order_no="N-7") == [paid, placed]  # newest first


def test_outcome_tells_ok_refusals_and_errors_apart(support):
    ok = trace(children=["create_order"])
    refused = trace(children=["create_order"], refusal="cart_empty")
    failed = trace(children=["create_order", "save_order"], error_in="save_order")
    refused_then_failed = trace(children=["create_order", "save_order"], refusal="x", error_in="save_order")

    assert found(support, outcome="ok") == [ok]
    assert found(support, outcome="refusal") == [refused]
    assert set(found(support, outcome="error")) == {failed, refused_then_failed}
    outcomes = {r["trace_id"]: r["outcome"] for r in support.get(URL, secure=True).json()["results"]}
    assert outcomes == {ok: "ok", refused: "refusal", failed: "error", refused_then_failed: "error"}


def test_duration_bounds_sort_and_limit(support):
    fast = trace(duration_ms=5, ago_s=3)
    middle = trace(duration_ms=50, ago_s=2)
    slow = trace(duration_ms=500, ago_s=1)

    assert found(support, min_duration_ms=50) == [slow, middle]
    assert found(support, max_duration_ms=50) == [middle, fast]
    assert found(support, min_duration_ms=10, max_duration_ms=100) == [middle]
    assert found(support, sort="duration") == [slow, middle, fast]
    assert found(support, sort="duration", limit=1) == [slow]
    assert found(support, limit=2) == [slow, middle]


def test_since_and_until_bound_the_start(support):
    old = trace(ago_s=3600)
    recent = trace(ago_s=60)
    now = datetime.now(UTC)

    assert found(support, since=(now - timedelta(minutes=10)).isoformat()) == [recent]
    assert found(support, until=(now - timedelta(minutes=10)).isoformat()) == [old]
    naive_utc = (now - timedelta(minutes=10)).replace(tzinfo=None).isoformat()
    assert found(support, since=naive_utc) == [recent]  # a moment without a zone is UTC
    window = {"since": (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z"), "until": now.isoformat()}
    assert found(support, **window) == [recent, old]


def test_a_trace_with_several_entries_is_listed_once_by_its_root(support):
    trace_id = trace("place_test_order", service="loadgen", duration_ms=40, ago_s=2)
    server = TraceSpan.objects.get(trace_id=trace_id)
    TraceSpan.objects.create(
        trace_id=trace_id, span_id="f" * 16, parent_span_id=server.span_id, entry=True, name="POST api/orders/",
        kind="SERVER", service="mall", start_ns=server.start_ns + 1000, duration_ns=30 * 10**6,
    )  # fmt: skip

    (result,) = support.get(URL, secure=True).json()["results"]
    assert (result["trace_id"], result["root"], result["span_count"]) == (
        trace_id, {"name": "place_test_order", "service": "loadgen"}, 2,
    )  # fmt: skip


def test_a_trace_of_several_parts_takes_the_worst_outcome(support):
    trace_id = trace("place_test_order", service="loadgen", ago_s=2)  # the client's part: ok
    TraceSpan.objects.create(
        trace_id=trace_id, span_id="e" * 16, parent_span_id="1" * 16, entry=True, name="POST api/orders/",
        kind="SERVER", service="mall", start_ns=NOW_NS, duration_ns=10**6, error=True, outcome="error",
    )  # fmt: skip

    assert found(support, outcome="ok") == []
    assert found(support, outcome="error") == [trace_id]


@pytest.mark.parametrize(
    "params",
    [
        {"outcome": "failed"},
        {"sort": "name"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"min_duration_ms": "-1"},
        {"min_duration_ms": "fast"},
        {"max_duration_ms": "1e400"},
        {"min_duration_ms": "100", "max_duration_ms": "10"},
        {"since": "yesterday"},
        {"until": "2026-13-40T00:00:00"},
        {"since": "2026-12-03T12:00:00Z", "until": "2026-12-03T11:00:00Z"},
        {"operation": "x" * 201},
        {"order_no": "n" * 41},
        {"min_duration": "100"},  # a misspelt parameter is an error, not a search for everything
    ],
)
def test_a_bad_parameter_is_a_400_invalid(support, params):
    response = support.get(URL, params, secure=True)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and body["errors"]


def test_asset_requests_are_not_traced_by_default(client, spans):
    for path in ("/static/admin/css/base.css", "/favicon.ico", "/admin/jsi18n/", "/robots.txt"):
        client.get(path, secure=True)
    client.get("/api/goods/", secure=True)

    servers = [span.name for span in spans.get_finished_spans() if span.kind.name == "SERVER"]
    assert servers == ["GET api/goods/"]


def test_the_environment_chooses_the_excluded_urls(monkeypatch):
    from opentelemetry.util.http import parse_excluded_urls

    from mall.telemetry.excluded import excluded_urls

    monkeypatch.delenv("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", raising=False)
    monkeypatch.delenv("OTEL_PYTHON_EXCLUDED_URLS", raising=False)
    default = parse_excluded_urls(excluded_urls())
    assert default.url_disabled("http://shop:8000/static/admin/js/core.js")
    assert not default.url_disabled("http://shop:8000/api/orders/")
    assert not default.url_disabled("http://shop:8000/api/static/")  # only the static prefix itself

    monkeypatch.setenv("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", "api/goods")
    chosen = parse_excluded_urls(excluded_urls())
    assert chosen.url_disabled("http://shop/api/goods/1/") and not chosen.url_disabled("http://shop/static/x.css")
    monkeypatch.setenv("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", "")
    assert excluded_urls() == ""  # set blank: every request is traced


def test_the_admin_page_searches_and_plots_each_trace_as_a_link(support):
    slow = trace(children=["create_order"], duration_ms=300, order_no="N-9")
    refused = trace(children=["create_order"], refusal="cart_empty")
    trace("GET api/goods/")

    response = support.get("/admin/traces/", {"operation": "create_order", "sort": "duration"}, secure=True)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="operation"' in html and 'name="min_duration_ms"' in html and 'name="outcome"' in html
    points = re.findall(
        r'<a href="/admin/traces/([0-9a-f]{32})/" class="trace-point"[^>]*><circle [^>]*class="(\w+)"', html
    )
    assert sorted(points) == sorted([(slow, "ok"), (refused, "refusal")])
    rows = re.findall(r'<td><a href="/admin/traces/([0-9a-f]{32})/"><code>', html)
    assert rows == [slow, refused]  # slowest first


def test_a_bad_parameter_on_the_admin_page_shows_the_form_error_with_a_400(support):
    response = support.get("/admin/traces/", {"min_duration_ms": "fast", "since": "soon"}, secure=True)

    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a number." in html and "Not an ISO 8601 date" in html and 'id="trace-plot"' not in html
