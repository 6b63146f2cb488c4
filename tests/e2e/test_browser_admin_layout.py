"""The admin at 1280 px in Chromium: titled "mall admin", and every column of the order list and the
ledger on screen (none behind a horizontal scroll). Screenshots go to artifacts/browser/.
"""

import pytest
from playwright.sync_api import Page, expect

from inventory.models import StockMove
from orders.checkout import create_order
from orders.services import pay_order
from tests.e2e.browsing import log_into_admin, screenshot
from tests.factories import fill_cart

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_password_hashing"),  # users made here log into the server
]

VIEWPORT_WIDTH = 1280


def right_edges(page: Page, selector: str) -> list[float]:
    return page.eval_on_selector_all(selector, "els => els.map(el => el.getBoundingClientRect().right)")


def assert_every_column_on_screen(page: Page, columns: list[str]) -> None:
    headers = page.eval_on_selector_all("#result_list thead th", "els => els.map(el => el.innerText.trim())")
    for column in columns:
        assert column in headers, (column, headers)
    edges = right_edges(page, "#result_list thead th") + right_edges(page, "#result_list tbody td")
    assert edges and max(edges) <= VIEWPORT_WIDTH, (max(edges), headers)
    scroll = page.eval_on_selector("#result_list", "el => [el.parentElement.scrollWidth, el.parentElement.clientWidth]")
    assert scroll[0] <= scroll[1] + 2, f"the result table scrolls sideways: {scroll}"  # 2 px: sub-pixel rounding
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT_WIDTH


@pytest.fixture
def orders(user, goods_in_stock, address):
    pen = goods_in_stock(name="Fountain pen with a rather long catalogue name", price="1234.50", stock=40)
    ink = goods_in_stock(name="Blue ink", price="3.20", stock=90)
    placed = []
    for number in range(3):
        fill_cart(user, (pen, 1), (ink, number + 1))
        placed.append(create_order(user=user, **address).order)
    pay_order(order=placed[0])
    return placed


def test_the_admin_is_titled_mall_admin(page, shop_url, staff_user):
    log_into_admin(page, shop_url, staff_user)
    expect(page.locator("#site-name")).to_have_text("mall admin")
    assert page.title() == "Site administration | mall admin"
    assert "Django administration" not in page.content()
    screenshot(page, "admin-index-1280")


def test_the_order_list_shows_deadline_and_trace_at_1280_px(page, shop_url, staff_user, orders):
    log_into_admin(page, shop_url, staff_user)
    page.goto(f"{shop_url}/admin/orders/order/")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    screenshot(page, "admin-order-list-1280")

    assert_every_column_on_screen(page, ["ORDER NO", "STATUS", "PAY PRICE", "EXPIRES AT", "TRACE"])
    trace_links = page.get_by_role("link", name="Open trace")
    expect(trace_links).to_have_count(3)
    for link in trace_links.all():
        assert link.is_visible() and link.bounding_box()["x"] + link.bounding_box()["width"] <= VIEWPORT_WIDTH


def test_the_ledger_shows_its_order_column_at_1280_px(page, shop_url, staff_user, orders):
    log_into_admin(page, shop_url, staff_user)
    page.goto(f"{shop_url}/admin/inventory/stockmove/")
    expect(page.locator("#result_list tbody tr")).to_have_count(StockMove.objects.count())
    screenshot(page, "admin-ledger-1280")

    assert_every_column_on_screen(page, ["KIND", "QUANTITY", "ORDER NO"])
    order_cells = page.locator("#result_list tbody td.field-order_no", has_text=orders[0].order_no)
    expect(order_cells.first).to_be_visible()
