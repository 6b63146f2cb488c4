"""Which database constraint fired: the checkout retries the two races it expects and surfaces any other."""

from contextlib import contextmanager

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from carts.models import CartItem
from inventory.models import Stock, StockMove
from mall.db import violated_constraint
from orders.checkout import RETRIED_CONSTRAINTS, create_order
from orders.models import Order
from tests.factories import ADDRESS, fill_cart


def integrity_error_of(write) -> IntegrityError:
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        write()
    return refused.value


def order_of(user, **fields) -> Order:
    return Order.objects.create(
        user=user, order_no=fields.pop("order_no", f"n-{Order.objects.count()}"), pay_price="1.00",
        address="a", signer_name="b", signer_mobile="1", expires_at=timezone.now(), **fields,
    )  # fmt: skip


def test_the_idempotency_key_and_order_number_uniques_are_named(user):
    order_of(user, order_no="n-1", idempotency_key="k")

    same_key = integrity_error_of(lambda: order_of(user, order_no="n-2", idempotency_key="k"))
    same_number = integrity_error_of(lambda: order_of(user, order_no="n-1"))

    assert violated_constraint(same_key) == "order_idempotency_key_per_user"
    assert violated_constraint(same_number) == "order_no"
    assert {"order_idempotency_key_per_user", "order_no"} == RETRIED_CONSTRAINTS


def test_the_stock_check_and_the_ledger_unique_are_named_and_not_retried(goods_in_stock):
    goods = goods_in_stock(stock=1)

    negative = integrity_error_of(lambda: Stock.objects.filter(goods=goods).update(quantity=-1))
    sell = {"goods": goods, "order_no": "n-1", "kind": "sell", "quantity": 1}
    StockMove.objects.create(**sell)
    second_sell = integrity_error_of(lambda: StockMove.objects.create(**sell))

    assert violated_constraint(negative) == "stock_quantity_non_negative"
    assert violated_constraint(second_sell) == "stockmove_once_per_order"
    assert not {"stock_quantity_non_negative", "stockmove_once_per_order"} & RETRIED_CONSTRAINTS


def test_a_not_null_violation_names_no_constraint(user):
    no_goods = integrity_error_of(lambda: CartItem.objects.create(user_id=user.pk, goods_id=None, nums=1))

    assert violated_constraint(no_goods) is None


@contextmanager
def stock_driven_negative_by_every_sell():
    """A trigger that drives the stock row negative when a sell is ledgered: the stock CHECK fires mid-checkout.

    A real constraint violation inside the real checkout, as a lost-lock oversell would cause.
    """
    body = "UPDATE inventory_stock SET quantity = -1 WHERE goods_id = NEW.goods_id"
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(f"CREATE TRIGGER oversell AFTER INSERT ON inventory_stockmove FOR EACH ROW {body}")
        else:
            cursor.execute(f"CREATE TRIGGER oversell AFTER INSERT ON inventory_stockmove BEGIN {body}; END")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER oversell")


def test_a_stock_check_violation_in_the_checkout_surfaces_at_once(transactional_db, user, goods_in_stock, spans):
    """Not retried, not turned into a 409: it is an oversell the locks should have prevented, a bug to see."""
    goods = goods_in_stock(stock=5)
    fill_cart(user, (goods, 1))
    spans.clear()

    with stock_driven_negative_by_every_sell(), pytest.raises(IntegrityError) as refused:
        create_order(user=user, **ADDRESS)

    assert violated_constraint(refused.value) == "stock_quantity_non_negative"
    attempts = [s for s in spans.get_finished_spans() if s.name == "save_order"]
    assert len(attempts) == 1, f"the checkout was attempted {len(attempts)} times"
    assert Order.objects.count() == 0
    assert Stock.objects.get(goods=goods).quantity == 5
    assert CartItem.objects.filter(user=user).count() == 1


def test_a_stock_check_violation_is_a_500_not_a_conflict(transactional_db, api, user, goods_in_stock):
    fill_cart(user, (goods_in_stock(stock=5), 1))
    api.raise_request_exception = False

    with stock_driven_negative_by_every_sell():
        response = api.post("/api/orders/", ADDRESS, format="json")

    assert response.status_code == 500
    assert Order.objects.count() == 0
