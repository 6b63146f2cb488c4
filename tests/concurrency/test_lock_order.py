"""One lock order (inventory/locks.py): admin goods saves and staff stock edits racing checkouts, cancels and closes.

Real threads, each with its own connection; on MariaDB they really interleave (on SQLite they queue
on the single writer lock). Before the lock order was fixed, a return locked the stock row and then
share-locked the goods row (ledger foreign key) while the admin's goods save held the goods row and
waited for the stock row: MariaDB killed one with a deadlock (1213).
"""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.expiry import close_order_if_overdue
from orders.invariants import check_invariants
from orders.models import Order
from tests.admin_pages import read_form
from tests.factories import ADDRESS, GoodsFactory, UserFactory, fill_cart
from tests.support import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_checkout_throttle(settings):
    settings.CHECKOUT_THROTTLE_RATE = None


def pending_orders(goods, count: int) -> list[Order]:
    orders = []
    for _ in range(count):
        buyer = UserFactory()
        fill_cart(buyer, *[(g, 1) for g in goods])
        orders.append(create_order(user=buyer, **ADDRESS).order)
    return orders


def test_admin_goods_saves_racing_cancels_and_closes_never_deadlock(client_for, staff_user):
    pen, ink = GoodsFactory(name="Pen", stock_quantity=1000), GoodsFactory(name="Ink", stock_quantity=1000)
    orders = pending_orders([pen, ink], 24)
    overdue = orders[::2]
    Order.objects.filter(pk__in=[o.pk for o in overdue]).update(expires_at=timezone.now() - timedelta(seconds=1))
    admin = Client()
    admin.force_login(staff_user)
    url = f"/admin/goods/goods/{pen.pk}/change/"
    page = read_form(admin, url, "goods_form")
    shown = int(page["stock-0-expected_quantity"])

    def act(step):
        kind, index = step
        if kind == "close":
            return close_order_if_overdue(order=overdue[index])
        if kind == "cancel":
            order = orders[2 * index + 1]
            return client_for(order.user).post(f"/api/orders/{order.pk}/cancel/").status_code
        # A goods save with a stock edit: the goods row, then its stock row (a conflict is a clean answer).
        client = Client()
        client.force_login(staff_user)
        edit = {**page, "name": f"Pen {index}", "stock-0-quantity": str(shown + 5), "stock-0-expected_quantity": shown}
        return client.post(url, edit).status_code

    steps = [(kind, i) for i in range(12) for kind in ("close", "cancel", "save")]
    results = run_concurrently(act, steps, threads=6)

    outcomes = dict(zip(steps, results, strict=True))
    assert all(outcomes[("close", i)] == "closed" for i in range(12))
    assert all(outcomes[("cancel", i)] == 200 for i in range(12))
    assert all(outcomes[("save", i)] == 302 for i in range(12))
    assert set(Order.objects.values_list("status", flat=True)) == {"closed", "cancelled"}
    assert Stock.objects.get(goods=ink).quantity == 1000
    assert check_invariants() == []


def test_staff_stock_deltas_racing_checkouts_lose_no_unit(client_for, staff_user):
    goods = GoodsFactory(stock_quantity=100)
    buyers = [UserFactory() for _ in range(20)]
    for buyer in buyers:
        fill_cart(buyer, (goods, 2))
    client_for(staff_user)  # its token exists before the threads start

    def act(step):
        kind, index = step
        if kind == "restock":
            return client_for(staff_user).patch(f"/api/stock/{goods.pk}/", {"delta": 3}, format="json").status_code
        return client_for(buyers[index]).post("/api/orders/", ADDRESS, format="json").status_code

    steps = [(kind, i) for i in range(20) for kind in ("buy", "restock")]
    results = run_concurrently(act, steps, threads=6)

    assert set(results) == {200, 201}
    sold = StockMove.objects.filter(goods=goods, kind="sell").aggregate(units=Sum("quantity"))["units"]
    assert sold == 40
    assert Stock.objects.get(goods=goods).quantity == 100 + 20 * 3 - 40
    assert check_invariants() == []


def test_stock_list_saves_in_any_sort_order_racing_checkouts_never_deadlock(client_for, staff_user):
    pen, ink = GoodsFactory(name="Pen", stock_quantity=500), GoodsFactory(name="Ink", stock_quantity=900)
    buyers = [UserFactory() for _ in range(16)]
    for buyer in buyers:
        fill_cart(buyer, (pen, 1), (ink, 1))
        client_for(buyer)
    admin = Client()
    admin.force_login(staff_user)
    url = "/admin/inventory/stock/?o=-2"  # by quantity, descending: Ink's row before Pen's
    page = read_form(admin, url, "changelist-form")
    assert [page["form-0-goods"], page["form-1-goods"]] == [str(ink.pk), str(pen.pk)]

    def act(step):
        kind, index = step
        if kind == "buy":
            return client_for(buyers[index]).post("/api/orders/", ADDRESS, format="json").status_code
        client = Client()
        client.force_login(staff_user)
        current = dict(Stock.objects.values_list("goods_id", "quantity"))
        edit = {**page, "_save": "Save"}
        for row in (0, 1):
            shown = current[int(page[f"form-{row}-goods"])]
            edit.update({f"form-{row}-expected_quantity": shown, f"form-{row}-quantity": shown + 1})
        return client.post(url, edit).status_code

    steps = [(kind, i) for i in range(16) for kind in ("buy", "save")]
    results = dict(zip(steps, run_concurrently(act, steps, threads=6), strict=True))

    assert {results[("buy", i)] for i in range(16)} == {201}
    assert {results[("save", i)] for i in range(16)} == {302}
    assert StockMove.objects.filter(kind="sell").count() == 32
    assert check_invariants() == []
