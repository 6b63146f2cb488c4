"""The monitor and the trace page that explains itself, in Chromium at 1280 px (issue 24).

gunicorn with production settings and the trace store on. Customers check out over HTTP; one checkout's
``save_order`` is made slow with the faults app (``faults set save_order --delay-ms``). Staff open the
monitor (a row and a latency chart per operation, each opening the search for that operation) and the
slow checkout's trace: the critical path marked, self times, save_order marked above the p95 of the
last hour, and an attribute table whose keys and SQL are readable. Screenshots: artifacts/browser/.
"""

import re
import secrets

import pytest
import requests
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from orders.tracing import CHECKOUT_STEPS, CREATE_ORDER
from tests.e2e.browsing import log_into_admin, screenshot
from tests.e2e.test_faults_wire import set_rule
from tests.factories import fill_cart
from tests.support import shop_env, shop_server, wait_until
from traces.models import TraceSpan

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_password_hashing"),  # users made here log into the server
]

DELAY_MS = 120


@pytest.fixture
def shop(tmp_path):
    env = shop_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(45),
        MALL_TRACE_STORE="on",
        JAEGER_UI_URL="",
        MALL_ALLOW_FAULT_INJECTION="1",
    )
    env.pop("DJANGO_DEBUG", None)
    with shop_server(env=env, log_dir=tmp_path) as url:
        yield url, env


def test_the_monitor_charts_each_operation_and_the_trace_page_explains_a_slow_step(
    page,
    shop,
    staff_user,
    user,
    goods_in_stock,
    address,
):
    shop_url, env = shop
    goods = goods_in_stock(name="Fountain pen", price="12.50", stock=100)
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}

    def checkout() -> requests.Response:
        fill_cart(user, (goods, 1))
        response = requests.post(f"{shop_url}/api/orders/", json=address, headers=headers, timeout=30)
        assert response.status_code == 201, response.text
        return response

    for _ in range(6):
        checkout()
    set_rule(env, "set", "save_order", "--delay-ms", str(DELAY_MS))
    slow = []  # the rule reaches the worker within 2 s: check out until a checkout is slowed
    wait_until(
        lambda: slow.append(response := checkout()) or response.elapsed.total_seconds() >= DELAY_MS / 1000,
        timeout=20,
        interval=0.3,
        what="a checkout slowed by the fault rule",
    )
    set_rule(env, "clear")
    trace_id = slow[-1].json()["trace_id"]
    wait_until(
        lambda: set(CHECKOUT_STEPS) <= set(TraceSpan.objects.filter(trace_id=trace_id).values_list("name", flat=True)),
        timeout=30,
        what="the slow checkout's spans in the store",
    )

    log_into_admin(page, shop_url, staff_user)
    page.goto(f"{shop_url}/admin/traces/monitor/?window=900")
    rows = page.locator("#monitor tr.operation")
    expect(page.locator(f"#monitor tr.operation[data-operation='{CREATE_ORDER}']")).to_have_count(1)
    for step in CHECKOUT_STEPS:
        expect(page.locator(f"#monitor tr.operation[data-operation='{step}']")).to_have_count(1)
    assert rows.count() >= 10
    expect(page.locator("#monitor svg.latency-chart")).to_have_count(rows.count())
    create_order_row = page.locator(f"#monitor tr.operation[data-operation='{CREATE_ORDER}']")
    expect(create_order_row.locator("td.count")).to_have_text(str(6 + len(slow)))
    assert create_order_row.locator("polyline.p95").get_attribute("points").strip()
    screenshot(page, "admin-trace-monitor")
    create_order_row.get_by_role("link", name=CREATE_ORDER).click()
    page.wait_for_url("**/admin/traces/?operation=create_order&sort=duration")

    page.goto(f"{shop_url}/admin/traces/{trace_id}/")
    for name in ("POST api/orders/", CREATE_ORDER, "save_order"):
        expect(page.locator(f".span-row.critical[data-span-name='{name}']")).to_have_count(1)
    save_order = page.locator(".span-row[data-span-name='save_order']")
    expect(save_order).to_have_class(re.compile(r"\babove-p95\b"))
    expect(save_order.locator(".history .above-p95-mark")).to_be_visible()
    expect(save_order.locator(".self-time")).to_contain_text("self ")
    save_order.locator("summary").click()
    expect(save_order.locator(".history-detail")).to_contain_text("p95 of the last hour")
    # A statement of the step: the SQL across the width, in monospace; keys on one line.
    statement = page.locator(".span-row[data-span-name^='INSERT']").first
    statement.locator("summary").click()
    sql = statement.locator("pre.sql").first
    expect(sql).to_contain_text("INSERT INTO")
    assert "mono" in sql.evaluate("element => getComputedStyle(element).fontFamily")
    assert sql.bounding_box()["width"] > 800
    key = statement.locator(".span-attributes th", has_text="db.statement")
    lines = "element => { const range = document.createRange(); range.selectNodeContents(element); return range.getClientRects().length; }"  # noqa: E501
    assert key.evaluate(lines) == 1 and key.bounding_box()["width"] >= 70  # on one line, as wide as the key
    create_order = page.locator(f".span-row[data-span-name='{CREATE_ORDER}']")
    create_order.locator("summary").click()
    expect(create_order.locator(".span-attributes")).to_contain_text(slow[-1].json()["order_no"])
    screenshot(page, "admin-trace-explained")
