"""Checkouts, payments and cancellations racing in real threads (each with its own DB connection)."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from inventory.models import Stock, StockMove
from orders.expiry import close_order_if_overdue
from orders.invariants import check_invariants
from orders.models import Order
from tests.factories import ADDRESS, GoodsFactory, UserFactory, fill_cart
from tests.support import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_checkout_throttle(settings):
    settings.CHECKOUT_THROTTLE_RATE = None  # one user places many orders here


def checkout(client, **headers):
    return client.post("/api/orders/", ADDRESS, format="json", **headers)


@pytest.mark.parametrize(("buyers", "stock"), [(40, 10), (200, 50)])
def test_buyers_of_a_hot_item_get_exactly_its_stock(client_for, buyers, stock):
    hot = GoodsFactory(stock_quantity=stock)
    clients = []
    for _ in range(buyers):
        buyer = UserFactory()
        fill_cart(buyer, (hot, 1))
        clients.append(client_for(buyer))

    responses = run_concurrently(checkout, clients, threads=min(buyers, 40))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * stock + [409] * (buyers - stock)
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"insufficient_stock"}
    assert Order.objects.count() == stock
    assert Stock.objects.get(goods=hot).quantity == 0
    assert StockMove.objects.filter(kind="sell").aggregate(units=Sum("quantity"))["units"] == stock
    assert check_invariants() == []


def test_pay_cancel_and_timeout_racing_on_100_orders_end_each_in_exactly_one_state(client_for):
    """Fresh orders: pay races cancel. Overdue orders: the timeout close races cancel (pay is refused)."""
    goods = GoodsFactory(stock_quantity=1000)
    buyer = UserFactory()
    client = client_for(buyer)
    order_ids = []
    for _ in range(100):
        fill_cart(buyer, (goods, 2))
        order_ids.append(checkout(client).json()["id"])
    overdue = set(order_ids[::2])
    Order.objects.filter(pk__in=overdue).update(expires_at=timezone.now() - timedelta(seconds=1))

    def attempt(job):
        order_id, action = job
        if action == "close":
            return close_order_if_overdue(order=Order.objects.get(pk=order_id)) == "closed"
        return client_for(buyer).post(f"/api/orders/{order_id}/{action}/").status_code == 200

    jobs = [(order_id, action) for order_id in order_ids for action in ("pay", "cancel", "close", "pay", "cancel")]
    won = run_concurrently(attempt, jobs, threads=16)

    winners = {}
    for (order_id, action), success in zip(jobs, won, strict=True):
        if success:
            winners.setdefault(order_id, []).append(action)
    final = dict(Order.objects.values_list("pk", "status"))
    for order_id in order_ids:
        assert len(winners.get(order_id, [])) == 1, f"order {order_id}: winners {winners.get(order_id)}"
        expected = {"pay": "paid", "cancel": "cancelled", "close": "closed"}[winners[order_id][0]]
        assert final[order_id] == expected
        assert (final[order_id] == "paid") <= (order_id not in overdue)
        assert (final[order_id] == "closed") <= (order_id in overdue)
    ended = sum(status in ("cancelled", "closed") for status in final.values())
    assert StockMove.objects.filter(kind="return").count() == ended
    assert Stock.objects.get(goods=goods).quantity == 1000 - 2 * (100 - ended)
    assert check_invariants() == []


def test_a_storm_of_retries_with_one_idempotency_key_places_one_order(client_for):
    goods = GoodsFactory(stock_quantity=10)
    buyer = UserFactory()
    fill_cart(buyer, (goods, 3))

    responses = run_concurrently(
        lambda _: checkout(client_for(buyer), HTTP_IDEMPOTENCY_KEY="double-click"), range(12), threads=12
    )

    assert sorted(r.status_code for r in responses) == [200] * 11 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Order.objects.count() == 1
    assert Stock.objects.get(goods=goods).quantity == 7


def test_cart_edits_racing_checkouts_never_half_order(client_for):
    """A user removes and re-adds items while checking out: every order matches its ledger exactly."""
    goods = [GoodsFactory(stock_quantity=1000) for _ in range(3)]
    buyer = UserFactory()
    client = client_for(buyer)

    def act(step):
        if step % 3 == 0:
            fill_cart(buyer, *[(g, 1) for g in goods])
            return checkout(client_for(buyer))
        line = next(iter(client_for(buyer).get("/api/cart/").json()), None)
        if line is None:
            return client_for(buyer).post("/api/cart/", {"goods": goods[step % 3].pk, "nums": 2}, format="json")
        return client_for(buyer).delete(f"/api/cart/{line['id']}/")

    responses = run_concurrently(act, list(range(30)), threads=4)

    assert not [r for r in responses if r.status_code >= 500]
    assert client.get("/api/cart/").status_code == 200
    for order in Order.objects.prefetch_related("lines"):
        sold = dict(StockMove.objects.filter(order_no=order.order_no, kind="sell").values_list("goods_id", "quantity"))
        assert sold == {line.goods_id: line.nums for line in order.lines.all()}
        assert order.pay_price == sum(line.goods_price * line.nums for line in order.lines.all())
    assert check_invariants() == []
