import pytest

from inventory.models import Stock, StockMove
from orders.models import Order
from tests.factories import fill_cart


@pytest.fixture
def place_order(api, user, goods_in_stock, address):
    """Place an order of 2 units of a fresh goods (stock 10) for ``user``; returns (order json, goods)."""

    def place():
        goods = goods_in_stock(stock=10)
        fill_cart(user, (goods, 2))
        response = api.post("/api/orders/", address, format="json")
        assert response.status_code == 201
        return response.json(), goods

    return place


def test_orders_list_and_detail_show_only_the_callers_orders(api, client_for, other_user, place_order):
    mine, _ = place_order()

    assert [o["id"] for o in api.get("/api/orders/").json()["results"]] == [mine["id"]]
    assert api.get(f"/api/orders/{mine['id']}/").json()["order_no"] == mine["order_no"]
    stranger = client_for(other_user)
    assert stranger.get("/api/orders/").json()["count"] == 0
    for request in (
        lambda: stranger.get(f"/api/orders/{mine['id']}/"),
        lambda: stranger.post(f"/api/orders/{mine['id']}/pay/"),
        lambda: stranger.post(f"/api/orders/{mine['id']}/cancel/"),
    ):
        response = request()
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert Order.objects.get(pk=mine["id"]).status == "pending"


def test_paying_a_pending_order(api, place_order):
    order, _ = place_order()

    response = api.post(f"/api/orders/{order['id']}/pay/")

    assert response.status_code == 200
    assert response.json()["status"] == "paid"
    assert response.json()["paid_at"] is not None


def test_cancelling_returns_the_stock_through_the_ledger(api, place_order):
    order, goods = place_order()

    response = api.post(f"/api/orders/{order['id']}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Stock.objects.get(goods=goods).quantity == 10
    returns = list(StockMove.objects.filter(kind="return").values_list("goods_id", "order_no", "quantity"))
    assert returns == [(goods.pk, order["order_no"], 2)]


@pytest.mark.parametrize(
    ("first", "then"),
    [("pay", "pay"), ("pay", "cancel"), ("cancel", "cancel"), ("cancel", "pay")],
)
def test_a_finished_order_cannot_transition_again(api, place_order, first, then):
    order, goods = place_order()
    api.post(f"/api/orders/{order['id']}/{first}/")
    stock_before = Stock.objects.get(goods=goods).quantity

    response = api.post(f"/api/orders/{order['id']}/{then}/")

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_pending"
    assert Order.objects.get(pk=order["id"]).status == {"pay": "paid", "cancel": "cancelled"}[first]
    assert Stock.objects.get(goods=goods).quantity == stock_before
    assert StockMove.objects.filter(kind="return").count() == (1 if first == "cancel" else 0)


def test_staff_can_cancel_pending_orders_from_the_admin(client, staff_user, place_order, api):
    pending, pending_goods = place_order()
    paid, _ = place_order()
    api.post(f"/api/orders/{paid['id']}/pay/")
    client.force_login(staff_user)

    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_pending", "_selected_action": [pending["id"], paid["id"]]},
        follow=True,
    )

    assert response.status_code == 200
    assert b"Cancelled 1 order(s); 1 were not pending." in response.content
    assert Order.objects.get(pk=pending["id"]).status == "cancelled"
    assert Order.objects.get(pk=paid["id"]).status == "paid"
    assert Stock.objects.get(goods=pending_goods).quantity == 10


def test_the_admin_order_pages_show_status_deadline_and_lines(client, staff_user, place_order):
    order, _ = place_order()
    client.force_login(staff_user)

    listing = client.get("/admin/orders/order/")
    page = client.get(f"/admin/orders/order/{order['id']}/change/")

    assert listing.status_code == 200 and order["order_no"].encode() in listing.content
    assert page.status_code == 200
    assert b"Expires at" in page.content
    assert order["lines"][0]["goods_name"].encode() in page.content


def test_the_admin_is_for_staff_only(client, user):
    client.force_login(user)

    response = client.get("/admin/orders/order/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_an_order_past_its_deadline_cannot_be_paid(api, place_order):
    order, _ = place_order()
    Order.objects.filter(pk=order["id"]).update(expires_at="2000-01-01T00:00:00Z")

    response = api.post(f"/api/orders/{order['id']}/pay/")

    assert response.status_code == 409
    assert response.json() == {
        "code": "order_not_pending",
        "detail": "The order is past its payment deadline.",
        "status": "expired",
    }
    assert Order.objects.get(pk=order["id"]).status == "pending"
