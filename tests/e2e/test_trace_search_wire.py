"""The trace search against a real shop (gunicorn, the trace store on): what is stored, and what the JSON finds.

After staff browse the admin and fetch static files, no stored trace is an asset request; the JSON search
(``GET /api/traces/``) finds a checkout by operation and by order number, a refusal by outcome, and a checkout
made slow by a fault rule (``faults set query_goods --delay-ms 300``) by its minimum duration.
"""

import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.contrib.auth.models import Group
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from mall.roles import ensure_staff_roles
from tests.e2e.browsing import log_into_admin, screenshot
from tests.e2e.test_faults_wire import Shopper, set_rule, within_reach
from tests.factories import TEST_PASSWORD, UserFactory
from tests.support import read_log, shop_env, shop_server, wait_until
from traces.models import DroppedSpans, TraceSpan

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_password_hashing"),  # users made here log into the server
]

ASSETS = ("/static/admin/css/base.css", "/static/admin/js/core.js", "/favicon.ico", "/admin/jsi18n/")


@pytest.fixture
def shop(goods_in_stock, tmp_path):
    env = shop_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(45), MALL_TRACE_STORE="on", JAEGER_UI_URL="",
        MALL_ALLOW_FAULT_INJECTION="1",
    )  # fmt: skip
    env.pop("DJANGO_DEBUG", None)
    goods = goods_in_stock(stock=1000)
    try:
        with shop_server(env=env, log_dir=tmp_path) as base_url:
            yield env, base_url, goods
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- gunicorn\n{read_log(tmp_path, 'gunicorn')[-3000:]}") from None


def support_user():
    ensure_staff_roles()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    return user


def admin_session(base_url: str, user) -> requests.Session:
    session = requests.Session()
    login = session.get(f"{base_url}/admin/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    answer = session.post(
        f"{base_url}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": csrf, "username": user.username, "password": TEST_PASSWORD, "next": "/admin/"},
        headers={"Referer": f"{base_url}/admin/login/"},
        timeout=10,
    )
    assert answer.status_code == 200 and "/admin/logout/" in answer.text, answer.text[:500]
    return session


def stored_entry_paths() -> list[tuple[str, str]]:
    """(name, path) of every stored server span."""
    return [
        (span.name, str(span.detail["attributes"].get("url.path") or span.detail["attributes"].get("http.target", "")))
        for span in TraceSpan.objects.filter(kind="SERVER")
    ]


def test_assets_are_not_stored_and_the_json_search_finds_checkouts_refusals_and_slow_ones(shop):
    env, base_url, goods = shop
    staff = support_user()
    staff_session = admin_session(base_url, staff)
    for path in ("/admin/", "/admin/orders/order/", "/admin/traces/", *ASSETS):
        staff_session.get(f"{base_url}{path}", timeout=10)

    shopper = Shopper(base_url, goods)
    placed = shopper.checkout().json()
    refused = requests.post(
        f"{base_url}/api/orders/", json={"address": "1 Main St", "signer_name": "A", "signer_mobile": "+15550100"},
        headers={"Authorization": f"Token {shopper.token}"}, timeout=30,
    )  # fmt: skip
    assert refused.status_code == 400 and refused.json()["code"] == "cart_empty"
    refusal_trace = re.search(r"-([0-9a-f]{32})-", refused.headers["traceresponse"]).group(1)
    since = set_rule(env, "set", "query_goods", "--delay-ms", "300")
    within_reach(lambda: shopper.checkout().elapsed.total_seconds() >= 0.3, since, what="the delay rule")
    slow = shopper.checkout().json()
    set_rule(env, "clear")

    wait_until(
        lambda: (
            TraceSpan.objects.filter(trace_id=slow["trace_id"], name="create_order").exists()
            and TraceSpan.objects.filter(trace_id=refusal_trace, entry=True).exists()
        ),
        timeout=30,
        what="the checkouts in the trace store",
    )
    stored = stored_entry_paths()
    assert {"GET admin/", "GET admin/traces/"} <= {name for name, _ in stored}  # the admin's pages are stored
    assert not [(name, path) for name, path in stored if path.startswith(ASSETS) or name == "GET"]

    api = requests.Session()
    api.headers["Authorization"] = f"Token {Token.objects.create(user=staff).key}"

    def search(**params) -> list[dict]:
        response = api.get(f"{base_url}/api/traces/", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["results"]

    by_operation = {r["trace_id"]: r for r in search(operation="create_order", limit=100)}
    assert {placed["trace_id"], slow["trace_id"]} <= set(by_operation)
    assert by_operation[placed["trace_id"]]["root"] == {"name": "POST api/orders/", "service": "mall"}
    assert [r["trace_id"] for r in search(order_no=placed["order_no"])] == [placed["trace_id"]]
    refusals = search(outcome="refusal")
    assert refusal_trace in [r["trace_id"] for r in refusals] and {r["outcome"] for r in refusals} == {"refusal"}
    slowest = search(operation="query_goods", min_duration_ms=300)
    slow_ids = [r["trace_id"] for r in slowest]
    assert slow["trace_id"] in slow_ids and placed["trace_id"] not in slow_ids
    assert all(r["duration_ms"] >= 300 for r in slowest)

    assert api.get(f"{base_url}/api/traces/?limit=0", timeout=10).json()["code"] == "invalid"
    assert requests.get(f"{base_url}/api/traces/", timeout=10).status_code == 401


def test_the_search_page_plots_traces_whose_points_open_them(shop, page):  # noqa: F811 (the fixture imported above)
    env, base_url, goods = shop
    shopper = Shopper(base_url, goods)
    placed = [shopper.checkout().json() for _ in range(3)]
    requests.post(
        f"{base_url}/api/orders/",
        json={"address": "1 Main St", "signer_name": "A", "signer_mobile": "+15550100"},
        headers={"Authorization": f"Token {shopper.token}"},
        timeout=30,
    )  # fmt: skip  (a refusal: the cart is empty)
    DroppedSpans.objects.create(
        since=datetime.now(UTC) - timedelta(minutes=5), until=datetime.now(UTC), count=42, error="OperationalError: x",
        pid=1,
    )  # fmt: skip
    wait_until(
        lambda: (
            TraceSpan.objects.filter(trace_id=placed[-1]["trace_id"], name="create_order").exists()
            and TraceSpan.objects.exclude(refusal_code="").exists()
        ),
        timeout=30,
        what="the checkouts in the trace store",
    )

    log_into_admin(page, base_url, support_user())
    page.goto(f"{base_url}/admin/traces/?operation=create_order")
    expect(page.locator("#dropped-spans")).to_contain_text("42 spans dropped since")
    for name in ("operation", "order_no", "outcome", "min_duration_ms", "max_duration_ms", "since", "until", "sort"):
        expect(page.locator(f"#trace-search [name={name}]")).to_be_visible()
    expect(page.locator("#trace-plot a.trace-point")).to_have_count(4)  # three placed, one refused
    expect(page.locator("#trace-plot circle.refusal")).to_have_count(1)
    screenshot(page, "admin-trace-search")

    page.select_option("#id_outcome", "refusal")
    page.click("#trace-search input[type=submit]")
    expect(page.locator("#trace-list tbody tr")).to_have_count(1)
    expect(page.locator("#trace-list")).to_contain_text("refusal")

    page.goto(f"{base_url}/admin/traces/?sort=duration&operation=create_order")
    point = page.locator(f"#trace-plot a.trace-point[data-trace-id='{placed[0]['trace_id']}']")
    point.click()
    expect(page.locator("#content h1")).to_contain_text(placed[0]["trace_id"])

    page.goto(f"{base_url}/admin/traces/?min_duration_ms=fast")
    expect(page.locator("#trace-search .errorlist")).to_contain_text("Enter a number")
    screenshot(page, "admin-trace-search-error")
