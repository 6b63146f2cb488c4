"""Faults: the database connection lost in the middle of a checkout."""

import threading

import pytest
from django.db import connection  # noqa: F401 - read by the skipif condition

from inventory.models import Stock, StockMove
from orders.models import Order
from tests.factories import GoodsFactory, UserFactory, fill_cart
from tests.support import alongside, mariadb_sessions, session_running

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'mysql'", reason="KILL of a server connection needs MariaDB/MySQL"),
]


def test_a_connection_killed_mid_checkout_is_a_clean_503_and_writes_nothing(client_for):
    goods = GoodsFactory(stock_quantity=5)
    buyer = UserFactory()
    fill_cart(buyer, (goods, 2))
    client = client_for(buyer)
    address = {"address": "1 Market Street", "signer_name": "Ada", "signer_mobile": "+15550100"}

    with mariadb_sessions(2) as (holder, killer):
        # Another session holds the stock row, so the checkout stops inside query_inv, mid-transaction.
        holder.autocommit(False)
        holder.cursor().execute("SELECT quantity FROM inventory_stock WHERE goods_id = %s FOR UPDATE", [goods.pk])
        waiting = threading.Event()

        def kill_the_waiting_checkout():
            what = "the checkout to wait for the stock lock"
            thread_id = session_running(killer, "%inventory_stock%FOR UPDATE%", what=what)
            killer.cursor().execute(f"KILL {int(thread_id)}")
            waiting.set()

        response = alongside(lambda: client.post("/api/orders/", address, format="json"), kill_the_waiting_checkout)

    assert waiting.is_set()
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert Order.objects.count() == 0
    assert not StockMove.objects.filter(kind="sell").exists()
    assert Stock.objects.get(goods=goods).quantity == 5
    assert buyer.cart_items.get().nums == 2
    # The shop recovers: the same client's next checkout goes through.
    assert client.post("/api/orders/", address, format="json").status_code == 201
