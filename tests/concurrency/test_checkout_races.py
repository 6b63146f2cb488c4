"""Races the locks exist for, asserted where they would break (real threads; the locks only show on MariaDB).

Each test repeats its race for a few rounds: one round of a lock-free checkout may happen to serialise,
several in a row do not (scripts/mutants.py removes each lock and expects these tests to fail).
"""

import pytest
from django.db import IntegrityError, connection

from carts.models import CartItem
from inventory.models import Stock, StockMove
from orders.invariants import check_invariants
from orders.models import Order
from tests.factories import ADDRESS, GoodsFactory, UserFactory, fill_cart
from tests.support import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 4


@pytest.fixture(autouse=True)
def _no_checkout_throttle(settings):
    settings.CHECKOUT_THROTTLE_RATE = None  # one user sends many checkouts here


class FailedStatements:
    """Records every SQL statement of this thread's connection that the database refused."""

    def __init__(self):
        self.errors: list[Exception] = []

    def __call__(self, execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except Exception as exc:
            self.errors.append(exc)
            raise


def test_a_double_submitted_checkout_without_idempotency_key_places_one_order(client_for):
    """A user's checkout sent 6 times at once (double clicks, a retrying client): one order, stock taken once."""
    for round_ in range(ROUNDS):
        goods = GoodsFactory(stock_quantity=100)
        buyer = UserFactory()
        fill_cart(buyer, (goods, 2))

        clients = [client_for(buyer) for _ in range(6)]  # one per request, as separate browser tabs would be

        responses = run_concurrently(lambda client: client.post("/api/orders/", ADDRESS, format="json"), clients)

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [400] * 5, f"round {round_}: {statuses}"
        assert {r.json()["code"] for r in responses if r.status_code == 400} == {"cart_empty"}
        assert Order.objects.filter(user=buyer).count() == 1, f"round {round_}"
        assert Stock.objects.get(goods=goods).quantity == 98
        assert list(StockMove.objects.filter(goods=goods, kind="sell").values_list("quantity", flat=True)) == [2]
        assert not CartItem.objects.filter(user=buyer).exists()
    assert check_invariants() == []


def test_the_hot_item_race_never_reaches_the_stock_constraint(client_for):
    """Buyers beyond the stock are refused by the checkout's own check under the stock-row lock.

    The database's CHECK (quantity >= 0) is the safety net behind it: here no statement may even
    hit it (a refused UPDATE would mean the check read a stale quantity, i.e. no lock).
    """
    failed = FailedStatements()

    def buy(client):
        client.raise_request_exception = False  # a 500 is an answer to count here, not a crash of the thread
        with connection.execute_wrapper(failed):  # this thread's own connection
            return client.post("/api/orders/", ADDRESS, format="json")

    for round_ in range(ROUNDS):
        hot = GoodsFactory(stock_quantity=4)
        clients = []
        for _ in range(16):
            buyer = UserFactory()
            fill_cart(buyer, (hot, 1))
            clients.append(client_for(buyer))

        responses = run_concurrently(buy, clients)

        assert [str(e) for e in failed.errors if isinstance(e, IntegrityError)] == [], f"round {round_}"
        assert sorted(r.status_code for r in responses) == [201] * 4 + [409] * 12, f"round {round_}"
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"insufficient_stock"}
        assert Stock.objects.get(goods=hot).quantity == 0
    assert check_invariants() == []
