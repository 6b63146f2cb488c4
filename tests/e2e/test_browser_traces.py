"""Following an order without Jaeger: a real browser opens the admin's "Open trace" link (built-in view).

gunicorn runs with production settings, the trace store on and no JAEGER_UI_URL (the embedded
default of `make run`). A customer places an order over HTTP; staff open the order in the admin,
follow its "Open trace" link and see the checkout as a waterfall: the seven step spans under
create_order, each with its duration. The page's screenshot is kept in artifacts/browser/.
"""

import re
import secrets

import pytest
import requests
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from orders.tracing import CHECKOUT_STEPS
from tests.e2e.browsing import log_into_admin, screenshot
from tests.factories import fill_cart
from tests.support import shop_env, shop_server, wait_until
from traces.models import TraceSpan

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_password_hashing"),  # users made here log into the server
]


@pytest.fixture
def shop_url(tmp_path):
    """gunicorn with production settings, the built-in trace store on, no Jaeger."""
    env = shop_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(45), MALL_TRACE_STORE="on", JAEGER_UI_URL="")
    env.pop("DJANGO_DEBUG", None)
    with shop_server(env=env, log_dir=tmp_path) as url:
        yield url


def test_staff_follow_an_order_to_its_checkout_trace_in_the_built_in_view(
    page,
    shop_url,
    staff_user,
    user,
    goods_in_stock,
    address,
):
    fill_cart(user, (goods_in_stock(name="Fountain pen", price="12.50", stock=40), 2))
    token = Token.objects.create(user=user).key
    response = requests.post(
        f"{shop_url}/api/orders/", json=address, headers={"Authorization": f"Token {token}"}, timeout=30
    )
    assert response.status_code == 201, response.text
    order = response.json()
    # The server's store writes a batch about a second after the request: wait for the whole checkout.
    wait_until(
        lambda: (
            set(CHECKOUT_STEPS)
            <= set(TraceSpan.objects.filter(trace_id=order["trace_id"]).values_list("name", flat=True))
        ),
        timeout=30,
        what="the checkout's spans in the trace store",
    )

    log_into_admin(page, shop_url, staff_user)
    page.goto(f"{shop_url}/admin/orders/order/{order['id']}/change/")
    trace_link = page.get_by_role("link", name="Open trace").first
    expect(trace_link).to_have_attribute("href", f"/admin/traces/{order['trace_id']}/")
    with page.context.expect_page() as opened:
        trace_link.click()  # target=_blank: a new tab
    trace_page = opened.value
    trace_page.wait_for_load_state()

    expect(trace_page.locator("#content h1")).to_contain_text(order["trace_id"])
    expect(trace_page.locator(".span-row").first).to_have_attribute("data-span-name", "POST api/orders/")
    for step in CHECKOUT_STEPS:
        row = trace_page.locator(f".span-row[data-span-name='{step}']")
        expect(row).to_have_count(1)
        expect(row.locator(".duration")).to_have_text(re.compile(r"^[0-9]+\.[0-9]{2} ms$"))
        expect(row.locator(".span-bar")).to_be_visible()
    create_order = trace_page.locator(".span-row[data-span-name='create_order']")
    create_order.locator("summary").click()  # attributes on demand
    expect(create_order.locator(".span-attributes")).to_contain_text(order["order_no"])
    screenshot(trace_page, "admin-trace-built-in")

    # The order number leads to every trace of the order.
    trace_page.get_by_role("link", name=order["order_no"]).first.click()
    expect(trace_page.locator("#trace-list")).to_contain_text(order["trace_id"])
