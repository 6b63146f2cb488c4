"""Checkouts, payments and cancellations racing in real threads (each with its own DB connection)."""

import itertools

import pytest
from django.db.models import Sum

from inventory.models import Stock, StockMove
from inventory.selectors import ledger_discrepancies
from orders.models import Order
from tests.factories import GoodsFactory, UserFactory, fill_cart
from tests.support import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = {"address": "1 Market Street", "signer_name": "Ada", "signer_mobile": "+15550100"}


def checkout(client, **headers):
    return client.post("/api/orders/", ADDRESS, format="json", **headers)


def test_forty_buyers_of_ten_units_get_exactly_ten_orders(client_for):
    hot = GoodsFactory(stock_quantity=10)
    buyers = [UserFactory() for _ in range(40)]
    for buyer in buyers:
        fill_cart(buyer, (hot, 1))
    clients = [client_for(buyer) for buyer in buyers]

    responses = run_concurrently(checkout, clients, threads=40)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [409] * 30
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"insufficient_stock"}
    assert Order.objects.count() == 10
    assert Stock.objects.get(goods=hot).quantity == 0
    assert StockMove.objects.filter(kind="sell").aggregate(units=Sum("quantity"))["units"] == 10
    assert ledger_discrepancies() == []


def test_racing_pay_and_cancel_end_each_order_in_exactly_one_state(client_for):
    goods = GoodsFactory(stock_quantity=100)
    buyer = UserFactory()
    client = client_for(buyer)
    order_ids = []
    for _ in range(20):
        fill_cart(buyer, (goods, 2))
        order_ids.append(checkout(client).json()["id"])
    attempts = [(order_id, action) for order_id in order_ids for action in ("pay", "cancel", "pay", "cancel")]

    responses = run_concurrently(
        lambda attempt: (attempt, client_for(buyer).post(f"/api/orders/{attempt[0]}/{attempt[1]}/")),
        attempts,
        threads=16,
    )

    assert all(r.status_code in (200, 409) for _, r in responses)
    for order_id, group in itertools.groupby(sorted(responses, key=lambda x: x[0][0]), key=lambda x: x[0][0]):
        winners = [(attempt[1], r) for attempt, r in group if r.status_code == 200]
        assert len(winners) == 1, f"order {order_id}: {len(winners)} winners"
        expected = {"pay": "paid", "cancel": "cancelled"}[winners[0][0]]
        assert Order.objects.get(pk=order_id).status == expected
    cancelled = Order.objects.filter(status="cancelled").count()
    assert StockMove.objects.filter(kind="return").count() == cancelled
    assert Stock.objects.get(goods=goods).quantity == 100 - 2 * (20 - cancelled)
    assert ledger_discrepancies() == []


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
    assert ledger_discrepancies() == []
