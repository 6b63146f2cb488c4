"""The benchmark's in-process parts on the test database, so CI runs the bench code (timing is never asserted).

``python -m perf bench --quick`` runs all of it against a server; these are the parts that need none.
"""

import os

import pytest

from inventory.models import Stock
from orders.models import Order
from perf.bench.checkout.floor import FloorClient, check_replay, run_floor
from perf.bench.checkout.statements import (
    LINE_COUNTS,
    capture_checkout_cycle,
    checkout_statement_counts,
    new_buyer,
    new_goods,
)
from tests.support import test_database_url as database_url_of_the_tests


def test_a_checkout_runs_the_same_statements_for_1_10_and_50_lines(db):
    counts = checkout_statement_counts()

    assert [count.lines for count in counts] == list(LINE_COUNTS)
    assert len({count.service for count in counts}) == 1, counts
    assert len({count.request for count in counts}) == 1, counts
    assert counts[0].service <= 12


# Opt-in like the floor itself (`python -m perf bench --floor`): a change of the shop's SQL must not wait for
# perf/bench/checkout/floor.py. Whoever measures the floor runs this first: MALL_BENCH_FLOOR=1 pytest tests/tooling/...
@pytest.mark.skipif(
    os.environ.get("MALL_BENCH_FLOOR") != "1", reason="the raw-driver floor is opt-in: MALL_BENCH_FLOOR=1 runs it"
)
@pytest.mark.django_db(transaction=True)  # the floor's raw connections must see the committed users and goods
def test_the_floor_replays_the_shops_own_checkout_statements(settings):
    settings.CHECKOUT_THROTTLE_RATE = None
    cycle = capture_checkout_cycle()
    plan = check_replay(cycle)  # raises if the floor would not run exactly the shop's statements
    replayed = [step.name for group in plan for step in group.steps if step.name != "begin"]
    assert len(replayed) == sum(not s.sql.upper().startswith("BEGIN") for s in cycle.statements)
    assert replayed.count("stock_locked") == replayed.count("order_insert") == 1
    goods = new_goods(stock=100)
    clients = []
    for _ in range(2):
        user, token = new_buyer()
        clients.append(FloorClient(token=token, user_id=user.pk, goods_id=goods.pk))
    orders_before = Order.objects.count()

    result = run_floor(
        database_url=database_url_of_the_tests(),
        options=settings.DATABASES["default"]["OPTIONS"],
        plan=plan,
        clients=clients,
        cycles=6,
        fingerprint=cycle.fingerprint,
        pay_timeout=600,
    )

    assert (result.cycles, result.errors) == (6, 0)
    assert Order.objects.count() == orders_before + 6
    assert Stock.objects.get(goods=goods).quantity == 94
