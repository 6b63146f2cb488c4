"""The invariant checker: silent on a consistent shop, precise about every kind of broken ledger."""

import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from inventory.models import Stock, StockMove
from inventory.services import set_stock_quantity
from orders.checkout import create_order
from orders.expiry import close_order_if_overdue
from orders.invariants import check_invariants
from orders.models import Order
from orders.services import cancel_order, pay_order
from tests.factories import fill_cart
from tests.support import REPO, shop_env


@pytest.fixture
def place_order(user, address):
    def place(*lines):
        fill_cart(user, *lines)
        return create_order(user=user, **address).order

    return place


@pytest.fixture
def shop_in_every_state(goods_in_stock, place_order):
    """Two goods and an order in each status, then a restock by staff.

    Ledger afterwards: pen 40 − 3 − 2 − 4 + 4 = 35; ink 15 − 1 − 2 + 2 − 5 + 5 + 16 = 30.
    """
    pen, ink = goods_in_stock(price="2.50", stock=40), goods_in_stock(price="7.10", stock=15)
    orders = {
        "pending": place_order((pen, 3), (ink, 1)),
        "paid": pay_order(order=place_order((pen, 2))),
        "cancelled": cancel_order(order=place_order((pen, 4), (ink, 2))),
    }
    closing = place_order((ink, 5))
    assert close_order_if_overdue(order=closing, now=closing.expires_at) == "closed"
    orders["closed"] = closing
    set_stock_quantity(goods_id=ink.pk, quantity=30)
    return pen, ink, orders


def test_a_consistent_shop_has_no_problems(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    assert {o.status for o in Order.objects.all()} == {"pending", "paid", "cancelled", "closed"}

    assert check_invariants() == []


def test_check_stock_reports_success(shop_in_every_state, capsys):
    call_command("check_stock")

    assert "consistent" in capsys.readouterr().out


def test_a_tampered_stock_row_is_reported(shop_in_every_state, capsys):
    pen, ink, orders = shop_in_every_state
    Stock.objects.filter(goods=pen).update(quantity=1000)  # behind the service's back: no ledger row

    problems = check_invariants()

    assert problems == [f"goods {pen.pk}: stock quantity 1000 but the ledger says 35 (Σ adjust + Σ return − Σ sell)"]
    with pytest.raises(CommandError, match="1 invariant violation"):
        call_command("check_stock")
    assert f"goods {pen.pk}: stock quantity 1000" in capsys.readouterr().err


def test_a_missing_return_is_reported(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    cancelled = orders["cancelled"]
    StockMove.objects.filter(order_no=cancelled.order_no, kind="return", goods=ink).delete()
    Stock.objects.filter(goods=ink).update(quantity=28)  # keep the ledger balanced: only the return is missing

    assert check_invariants() == [
        f"order {cancelled.order_no} (cancelled): lines [goods {pen.pk} × 4, goods {ink.pk} × 2] "
        f"but return moves [goods {pen.pk} × 4]"
    ]


def test_a_return_on_a_paid_order_is_reported(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    paid = orders["paid"]
    StockMove.objects.create(goods=pen, order_no=paid.order_no, kind="return", quantity=2)
    Stock.objects.filter(goods=pen).update(quantity=37)

    assert check_invariants() == [
        f"order {paid.order_no} (paid): return moves [goods {pen.pk} × 2] although the order is not ended"
    ]


def test_the_database_refuses_a_second_return(shop_in_every_state):
    """A duplicated return cannot even be written: the ledger's unique (order_no, goods, kind)."""
    pen, ink, orders = shop_in_every_state
    cancelled = orders["cancelled"]

    with pytest.raises(IntegrityError), transaction.atomic():
        StockMove.objects.create(goods=ink, order_no=cancelled.order_no, kind="return", quantity=2)

    assert check_invariants() == []


def test_a_return_of_the_wrong_units_is_reported(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    closed = orders["closed"]
    StockMove.objects.filter(order_no=closed.order_no, kind="return").update(quantity=6)
    Stock.objects.filter(goods=ink).update(quantity=31)

    assert check_invariants() == [
        f"order {closed.order_no} (closed): lines [goods {ink.pk} × 5] but return moves [goods {ink.pk} × 6]"
    ]


def test_a_sell_that_does_not_match_the_lines_is_reported(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    pending = orders["pending"]
    StockMove.objects.filter(order_no=pending.order_no, goods=ink).delete()
    Stock.objects.filter(goods=ink).update(quantity=31)

    assert check_invariants() == [
        f"order {pending.order_no} (pending): lines [goods {pen.pk} × 3, goods {ink.pk} × 1] "
        f"but sell moves [goods {pen.pk} × 3]"
    ]


def test_stock_sold_without_an_order_is_reported(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    StockMove.objects.create(goods=pen, order_no="20990101000000000000001000001", kind="sell", quantity=1)
    Stock.objects.filter(goods=pen).update(quantity=34)

    assert check_invariants() == [
        f"order 20990101000000000000001000001: sell moves [goods {pen.pk} × 1] but no such order"
    ]


def test_a_wrong_total_is_reported(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    pending = orders["pending"]
    Order.objects.filter(pk=pending.pk).update(pay_price="14.59")

    assert check_invariants() == [f"order {pending.order_no} (pending): pay_price 14.59 but its lines sum to 14.60"]


def test_a_ledger_without_its_stock_row_is_reported(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    Stock.objects.filter(goods=pen).delete()

    assert check_invariants() == [f"goods {pen.pk}: ledger moves but no stock row"]


def test_an_order_move_without_order_number_is_reported(shop_in_every_state):
    pen, ink, orders = shop_in_every_state
    StockMove.objects.create(goods=ink, kind="sell", quantity=2)
    Stock.objects.filter(goods=ink).update(quantity=28)

    assert check_invariants() == [f"goods {ink.pk}: 1 sell move(s) without an order number"]


@pytest.mark.django_db(transaction=True)
def test_check_stock_command_exits_non_zero_on_problems(goods_in_stock, user, address):
    """The real command in its own process (as operators run it), on committed data."""
    fill_cart(user, (goods_in_stock(stock=5), 2))
    create_order(user=user, **address)
    command = [sys.executable, "manage.py", "check_stock"]

    clean = subprocess.run(command, cwd=REPO, env=shop_env(), capture_output=True, text=True, timeout=120)
    assert (clean.returncode, clean.stdout.strip()) == (0, "stock ledger and orders are consistent"), clean.stderr

    goods_id = Stock.objects.get().goods_id
    Stock.objects.filter(goods_id=goods_id).update(quantity=4)
    broken = subprocess.run(command, cwd=REPO, env=shop_env(), capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1
    assert f"goods {goods_id}: stock quantity 4 but the ledger says 3" in broken.stderr
    assert "1 invariant violation(s)" in broken.stderr
