"""Idempotency-Key values are compared byte for byte on every database (MariaDB's collation ignores case)."""

import pytest

from orders.models import Order
from tests.factories import fill_cart

KEY = "aZ3kQ9-order-7"
SAME_LETTERS_OTHER_CASE = "Az3Kq9-ORDER-7"


@pytest.fixture(autouse=True)
def _no_checkout_throttle(settings):
    settings.CHECKOUT_THROTTLE_RATE = None


def checkout(api, address, key):
    return api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_keys_that_differ_only_in_case_place_two_orders(api, user, goods_in_stock, address):
    pen = goods_in_stock(stock=10)
    fill_cart(user, (pen, 1))
    first = checkout(api, address, KEY)
    fill_cart(user, (pen, 2))

    second = checkout(api, address, SAME_LETTERS_OTHER_CASE)
    replay = checkout(api, address, KEY)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["id"] != first.json()["id"]
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert sorted(Order.objects.filter(user=user).values_list("idempotency_key", flat=True)) == sorted(
        [KEY, SAME_LETTERS_OTHER_CASE]
    )
    assert Order.objects.get(idempotency_key=SAME_LETTERS_OTHER_CASE).lines.get().nums == 2


def test_a_lookup_by_key_is_exact_and_the_column_binary_on_mariadb(api, user, goods_in_stock, address, on_mariadb):
    fill_cart(user, (goods_in_stock(stock=10), 1))
    checkout(api, address, KEY)

    assert Order.objects.filter(user=user, idempotency_key=SAME_LETTERS_OTHER_CASE).count() == 0
    assert Order.objects.filter(user=user, idempotency_key=KEY).count() == 1
    if on_mariadb:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = 'orders_order' AND column_name = 'idempotency_key'"
            )
            assert cursor.fetchone()[0] == "utf8mb4_bin"
