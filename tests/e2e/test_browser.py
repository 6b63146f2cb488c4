"""A real browser (Playwright + Debian's Chromium, headless) against a real gunicorn.

The server runs with production settings (DEBUG off, static files from WhiteNoise) over plain
HTTP (DJANGO_SECURE_SSL_REDIRECT=0). Staff use the admin: the order list, an order with its
lines and its "Open trace" link, a stock change in the stock list. A shopper uses the browsable
API: log in, add to the cart, place an order through the HTML form. Screenshots go to
artifacts/browser/.
"""

import re

import pytest
from playwright.sync_api import expect

from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.invariants import check_invariants
from orders.models import Order
from tests.e2e.browsing import log_into_admin, screenshot
from tests.factories import TEST_PASSWORD, fill_cart

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_password_hashing"),
]


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
