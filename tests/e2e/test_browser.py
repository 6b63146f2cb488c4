"""A real browser (Playwright + Debian's Chromium, headless) against a real gunicorn.

The server runs with production settings (DEBUG off, static files from WhiteNoise) over plain
HTTP (DJANGO_SECURE_SSL_REDIRECT=0). Staff use the admin: the order list, an order with its
lines and its "Open trace" link, a stock change in the stock list. A shopper uses the browsable
API: log in, add to the cart, place an order through the HTML form. Screenshots go to
artifacts/browser/.
"""

import re
import secrets

import pytest
from django.conf import global_settings
from playwright.sync_api import Page, expect, sync_playwright

from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.invariants import check_invariants
from orders.models import Order
from tests.factories import TEST_PASSWORD, fill_cart
from tests.support import REPO, shop_env, shop_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = REPO / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def production_password_hashing(settings):
    """Users made here log into the server, which only knows the production hashers (not the suite's MD5)."""
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS


@pytest.fixture
def shop_url(tmp_path):
    """gunicorn with production settings (a real secret key, so DEBUG is off) on the test database."""
    env = shop_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(45), JAEGER_UI_URL="http://jaeger.example:16686")
    env.pop("DJANGO_DEBUG", None)
    with shop_server(env=env, log_dir=tmp_path) as url:
        yield url


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an asyncio loop in this thread; Django would take the test's own
    # (synchronous) database calls for calls from async code and refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_into_admin(page: Page, shop_url: str, user) -> None:
    page.goto(f"{shop_url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    expect(page.locator("#content h1")).to_have_text("Site administration")


def test_staff_see_orders_with_their_trace_and_change_stock(page, shop_url, staff_user, user, goods_in_stock, address):
    pen = goods_in_stock(name="Fountain pen", price="12.50", stock=40)
    ink = goods_in_stock(name="Blue ink", price="3.20", stock=9)
    fill_cart(user, (pen, 2), (ink, 3))
    order = create_order(user=user, **address).order
    assert order.trace_id

    log_into_admin(page, shop_url, staff_user)
    # Styled: the admin's stylesheet is served (WhiteNoise) and applied.
    stylesheet = page.locator("link[rel=stylesheet][href*='admin/css/base']").first.get_attribute("href")
    css = page.request.get(f"{shop_url}{stylesheet}")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    header_background = page.eval_on_selector("#header", "el => getComputedStyle(el).backgroundColor")
    assert header_background not in ("rgba(0, 0, 0, 0)", "transparent")

    page.goto(f"{shop_url}/admin/orders/order/")
    row = page.locator("#result_list tbody tr", has_text=order.order_no)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("pending")
    expect(row).to_contain_text("34.60")
    screenshot(page, "admin-order-list")

    row.locator(f"a:text-is('{order.order_no}')").click()
    expect(page).to_have_url(re.compile(rf"/admin/orders/order/{order.pk}/change/"))
    lines = page.locator("#lines-group")
    expect(lines).to_contain_text("Fountain pen")
    expect(lines).to_contain_text("Blue ink")
    expect(lines).to_contain_text("12.50")
    trace_link = page.get_by_role("link", name="Open trace").first  # the order's; then one per event
    expect(trace_link).to_have_attribute("href", f"http://jaeger.example:16686/trace/{order.trace_id}")
    screenshot(page, "admin-order")

    page.goto(f"{shop_url}/admin/inventory/stock/?q=Blue+ink")
    quantity = page.locator("input[name='form-0-quantity']")
    expect(quantity).to_have_value("6")
    quantity.fill("25")
    page.click("input[name='_save']")
    expect(page.locator(".messagelist")).to_contain_text("changed successfully")
    screenshot(page, "admin-stock-changed")

    assert Stock.objects.get(goods=ink).quantity == 25
    restock = StockMove.objects.filter(goods=ink, kind="adjust").order_by("id").last()
    assert (restock.quantity, restock.order_no) == (19, None)
    assert check_invariants() == []


def test_a_shopper_orders_through_the_browsable_api(page, shop_url, user, goods_in_stock, address):
    pen = goods_in_stock(name="Fountain pen", price="12.50", stock=40)

    page.goto(f"{shop_url}/api/auth/login/?next=/api/cart/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("#submit-id-submit, button[type=submit], input[type=submit]")
    expect(page).to_have_url(re.compile(r"/api/cart/$"))
    expect(page.locator(".navbar")).to_contain_text(user.username)

    # Add to the cart with the HTML form of POST /api/cart/.
    cart_form = page.locator("#post-object-form")
    cart_form.locator("input[name='goods']").fill(str(pen.pk))
    cart_form.locator("input[name='nums']").fill("3")
    cart_form.locator("button:has-text('POST')").click()
    expect(page.locator(".response-info")).to_contain_text("HTTP 201 Created")
    screenshot(page, "api-cart-added")

    page.goto(f"{shop_url}/api/orders/")
    order_form = page.locator("#post-object-form")
    for field, value in address.items():
        order_form.locator(f"[name='{field}']").fill(value)
    order_form.locator("button:has-text('POST')").click()
    expect(page.locator(".response-info")).to_contain_text("HTTP 201 Created")
    expect(page.locator(".response-info")).to_contain_text('"status": "pending"')
    screenshot(page, "api-order-placed")

    order = Order.objects.get(user=user)
    assert (order.status, order.pay_price) == ("pending", pen.price * 3)
    assert list(order.lines.values_list("goods_id", "nums")) == [(pen.pk, 3)]
    assert order.trace_id and order.trace_id in page.locator(".response-info").inner_text()
    assert Stock.objects.get(goods=pen).quantity == 37
    assert not user.cart_items.exists()
    assert check_invariants() == []
