"""A real browser (Chromium) on a real gunicorn: staff edit the stock list while a sale happens, and save goods.

Same set-up as tests/e2e/test_browser.py (production settings over plain HTTP). Screenshots go to
artifacts/browser/.
"""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from goods.models import Goods
from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.invariants import check_invariants
from tests.e2e.browsing import log_into_admin, screenshot
from tests.factories import fill_cart

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_password_hashing"),  # users made here log into the server
]


def staff_adjustments(goods) -> list[int]:
    return list(
        StockMove.objects.filter(goods=goods, kind="adjust", user__isnull=False).values_list("quantity", flat=True)
    )


def test_a_stock_list_save_during_a_sale_keeps_the_sale_and_goods_save(
    page,
    shop_url,  # noqa: F811
    staff_user,
    user,
    goods_in_stock,
    address,
):
    alpha = goods_in_stock(name="Alpha tea", price="12.50", stock=100)
    beta = goods_in_stock(name="Beta coffee", price="8.00", stock=50)
    log_into_admin(page, shop_url, staff_user)

    page.goto(f"{shop_url}/admin/inventory/stock/")
    alpha_box = page.locator("#result_list tbody tr", has_text="Alpha tea").locator("input[name$='-quantity']")
    beta_box = page.locator("#result_list tbody tr", has_text="Beta coffee").locator("input[name$='-quantity']")
    expect(alpha_box).to_have_value("100")

    fill_cart(user, (alpha, 10))  # a customer buys 10 Alpha while the page is open
    create_order(user=user, **address)

    alpha_box.fill("120")
    beta_box.fill("60")
    page.click("input[name='_save']")
    expect(page.locator(".messagelist .error")).to_contain_text("Alpha tea")
    expect(page.locator(".messagelist .error")).to_contain_text("NOT changed")
    expect(page.locator(".messagelist")).to_contain_text("1 other stock edit(s) saved")
    expect(alpha_box).to_have_value("90")  # the current quantity, to edit again
    expect(beta_box).to_have_value("60")
    screenshot(page, "admin-stock-conflict")
    assert (Stock.objects.get(goods=alpha).quantity, Stock.objects.get(goods=beta).quantity) == (90, 60)
    assert staff_adjustments(alpha) == [] and staff_adjustments(beta) == [10]

    # The goods page: change the price and the stock it shows.
    page.goto(f"{shop_url}/admin/goods/goods/{alpha.pk}/change/")
    page.fill("#id_price", "13.00")
    page.fill("#id_stock-0-quantity", "95")
    page.click("input[name='_save']")
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")

    # And a new goods, with its first stock.
    page.goto(f"{shop_url}/admin/goods/goods/add/")
    page.fill("#id_name", "Gamma cocoa")
    page.fill("#id_price", "4.20")
    page.fill("#id_stock-0-quantity", "30")
    page.click("input[name='_save']")
    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")
    screenshot(page, "admin-goods-added")

    alpha.refresh_from_db()
    gamma = Goods.objects.get(name="Gamma cocoa")
    assert (alpha.price, Stock.objects.get(goods=alpha).quantity) == (Decimal("13.00"), 95)
    assert staff_adjustments(alpha) == [5]
    assert (Stock.objects.get(goods=gamma).quantity, staff_adjustments(gamma)) == (30, [30])
    assert check_invariants() == []
