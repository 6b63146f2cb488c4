"""Stock's "Updated at" is when the stock last changed: sales, cancels, closes and adjustments alike."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.formats import localize
from django.utils.timezone import template_localtime

from inventory.models import Stock
from inventory.services import adjust_stock
from orders.expiry import close_overdue_batch
from tests.factories import fill_cart

LONG_AGO = timedelta(days=3)


@pytest.fixture
def tea(goods_in_stock):
    return goods_in_stock(name="Tea", stock=10)


def backdate(goods) -> None:
    """Pretend the stock last changed days ago (instead of sleeping for a visible change)."""
    Stock.objects.filter(goods=goods).update(updated_at=timezone.now() - LONG_AGO)


def assert_just_updated(goods, *, since) -> None:
    stock = Stock.objects.get(goods=goods)
    assert since <= stock.updated_at <= timezone.now()


def checkout(api, user, goods, address) -> dict:
    fill_cart(user, (goods, 2))
    response = api.post("/api/orders/", address, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_sale_stamps_the_stock_and_the_api_shows_it(api, user, tea, address):
    backdate(tea)
    before = timezone.now()

    checkout(api, user, tea, address)

    assert_just_updated(tea, since=before)
    shown = api.get(f"/api/stock/{tea.pk}/").json()
    assert shown["quantity"] == 8
    assert shown["updated_at"] == Stock.objects.get(goods=tea).updated_at.isoformat().replace("+00:00", "Z")


def test_a_cancel_stamps_the_stock(api, user, tea, address):
    order = checkout(api, user, tea, address)
    backdate(tea)
    before = timezone.now()

    assert api.post(f"/api/orders/{order['id']}/cancel/").status_code == 200

    assert Stock.objects.get(goods=tea).quantity == 10
    assert_just_updated(tea, since=before)


def test_a_close_of_an_unpaid_order_stamps_the_stock(api, user, tea, address):
    checkout(api, user, tea, address)
    backdate(tea)
    before = timezone.now()

    closed = close_overdue_batch(now=timezone.now() + timedelta(days=1), limit=10)

    assert len(closed) == 1
    assert Stock.objects.get(goods=tea).quantity == 10
    assert_just_updated(tea, since=before)


def test_a_staff_adjustment_stamps_the_stock(tea, staff_user):
    backdate(tea)
    before = timezone.now()

    adjust_stock(goods_id=tea.pk, delta=5, user=staff_user)

    assert_just_updated(tea, since=before)


def test_the_admin_stock_list_shows_the_last_change(client, staff_user, api, user, tea, address):
    backdate(tea)
    edited_long_ago = localize(template_localtime(Stock.objects.get(goods=tea).updated_at))
    checkout(api, user, tea, address)
    client.force_login(staff_user)

    page = client.get("/admin/inventory/stock/").content.decode()

    assert localize(template_localtime(Stock.objects.get(goods=tea).updated_at)) in page
    assert edited_long_ago not in page
