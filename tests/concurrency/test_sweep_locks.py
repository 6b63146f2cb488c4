"""The batched close passes over orders someone else holds right now, instead of waiting for them.

Deterministic on MariaDB: another transaction holds one overdue order's row (as a pay or cancel does
between its update and its commit) while the batch runs. With ``FOR UPDATE SKIP LOCKED`` the batch
closes the others at once; without it the batch would read the held order too and then wait for its
lock (here cut to 1 s) until it fails. SQLite has one writer and no row locks: nothing to pass over.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from orders.checkout import create_order
from orders.expiry import close_overdue_batch
from orders.invariants import check_invariants
from orders.models import Order
from tests.factories import fill_cart

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def overdue_orders(user, address, goods_in_stock):
    tea = goods_in_stock(name="Tea", stock=10)
    orders = []
    for _ in range(4):
        fill_cart(user, (tea, 1))
        orders.append(create_order(user=user, **address).order)
    Order.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    return orders


def test_the_batch_passes_over_an_order_another_transaction_holds(overdue_orders):
    if connection.vendor != "mysql":
        pytest.skip("row locks: MariaDB only (SQLite has a single writer)")
    held, *free = overdue_orders
    holding, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                Order.objects.select_for_update().get(pk=held.pk)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        with connection.cursor() as cursor:  # a wait for the held row fails fast instead of after 10 s
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
        closed = close_overdue_batch(now=timezone.now(), limit=10)
    finally:
        release.set()
        holder.join(timeout=30)

    assert sorted(order.id for order in closed) == sorted(order.pk for order in free)
    assert Order.objects.get(pk=held.pk).status == Order.Status.PENDING  # left for the next batch
    assert [order.id for order in close_overdue_batch(now=timezone.now(), limit=10)] == [held.pk]
    assert check_invariants() == []
