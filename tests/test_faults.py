"""Faults: the database connection lost in the middle of a checkout."""

import threading

import pytest
from django.db import connection

from inventory.models import Stock, StockMove
from orders.models import Order
from tests.factories import GoodsFactory, UserFactory, fill_cart
from tests.support import run_concurrently, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'mysql'", reason="KILL of a server connection needs MariaDB/MySQL"),
]


def raw_connection():
    import MySQLdb

    s = connection.settings_dict
    return MySQLdb.connect(
        host=s["HOST"] or "127.0.0.1", port=int(s["PORT"] or 3306), user=s["USER"], passwd=s["PASSWORD"], db=s["NAME"]
    )


def test_a_connection_killed_mid_checkout_is_a_clean_503_and_writes_nothing(client_for):
    goods = GoodsFactory(stock_quantity=5)
    buyer = UserFactory()
    fill_cart(buyer, (goods, 2))
    client = client_for(buyer)
    address = {"address": "1 Market Street", "signer_name": "Ada", "signer_mobile": "+15550100"}

    # Another session holds the stock row, so the checkout stops inside query_inv, mid-transaction.
    holder = raw_connection()
    holder.autocommit(False)
    holder.cursor().execute("SELECT quantity FROM inventory_stock WHERE goods_id = %s FOR UPDATE", [goods.pk])
    killer = raw_connection()
    waiting = threading.Event()

    def kill_the_waiting_checkout():
        def waiting_checkout_id():
            cursor = killer.cursor()
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
                ["%inventory_stock%FOR UPDATE%"],
            )
            row = cursor.fetchone()
            return row[0] if row else None

        thread_id = wait_until(waiting_checkout_id, timeout=20, what="the checkout to wait for the stock lock")
        killer.cursor().execute(f"KILL {int(thread_id)}")
        waiting.set()
        return thread_id

    try:
        results = run_concurrently(
            lambda role: (
                client.post("/api/orders/", address, format="json")
                if role == "checkout"
                else kill_the_waiting_checkout()
            ),
            ["checkout", "kill"],
        )
    finally:
        holder.rollback()
        holder.close()
        killer.close()

    response = results[0]
    assert waiting.is_set()
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert Order.objects.count() == 0
    assert not StockMove.objects.filter(kind="sell").exists()
    assert Stock.objects.get(goods=goods).quantity == 5
    assert buyer.cart_items.get().nums == 2
    # The shop recovers: the same client's next checkout goes through.
    assert client.post("/api/orders/", address, format="json").status_code == 201
