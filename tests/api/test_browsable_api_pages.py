"""The browsable API's pages do what a user expects before they press anything.

The cart's form shows "Checked" ticked, as lines are created checked; an order's pay/ and cancel/
pages open on the order with a POST button (not on a 405), and only the POST acts.
"""

import re

import pytest

from orders.checkout import create_order
from orders.models import Order
from tests.factories import TEST_PASSWORD, fill_cart

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_client(client, user):
    assert client.login(username=user.username, password=TEST_PASSWORD)
    return client


@pytest.fixture
def order(user, goods_in_stock, address):
    fill_cart(user, (goods_in_stock(price="5.00"), 2))
    return create_order(user=user, **address).order


def html(client, path: str) -> str:
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_the_cart_form_shows_checked_ticked_and_a_line_added_with_it_is_checked(browser_client, user, goods_in_stock):
    page = html(browser_client, "/api/cart/")
    (checkbox,) = re.findall(r'<input[^>]*name="checked"[^>]*>', page)
    assert "checked" in checkbox.replace('name="checked"', "")
    goods = goods_in_stock()
    # What the form posts when left as shown.
    response = browser_client.post("/api/cart/", {"goods": goods.pk, "nums": 1, "checked": "true"})
    assert response.status_code == 201 and response.json()["checked"] is True
    assert user.cart_items.get().checked


@pytest.mark.parametrize("action", ["pay", "cancel"])
def test_an_order_action_page_opens_on_the_order_with_a_post_button(browser_client, order, action):
    page = html(browser_client, f"/api/orders/{order.pk}/{action}/")

    assert "HTTP 405" not in page and "Method Not Allowed" not in page  # the page status line, not a digit run
    assert order.order_no in page
    assert re.search(r'<form[^>]*method="POST"', page) and ">POST</button>" in page
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING  # opening the page changed nothing


@pytest.mark.parametrize(("action", "status"), [("pay", "paid"), ("cancel", "cancelled")])
def test_only_the_post_acts(api, order, action, status):
    shown = api.get(f"/api/orders/{order.pk}/{action}/")
    assert shown.status_code == 200 and shown.json()["status"] == "pending"
    assert api.put(f"/api/orders/{order.pk}/{action}/").status_code == 405

    done = api.post(f"/api/orders/{order.pk}/{action}/")

    assert done.status_code == 200 and done.json()["status"] == status
    again = api.post(f"/api/orders/{order.pk}/{action}/")
    assert again.status_code == 409 and again.json()["code"] == "order_not_pending"


def test_another_users_order_action_page_is_a_404(client_for, other_user, order):
    response = client_for(other_user).get(f"/api/orders/{order.pk}/pay/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
