"""Second, independent witnesses of order rules that one test each used to carry.

- the payment deadline is exact: the close refuses an order a moment before it, takes it at it;
- an Idempotency-Key stands for one request body: a change to any field of it is refused.
"""

from datetime import timedelta

import pytest

from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.errors import IdempotencyKeyReused
from orders.expiry import close_order_if_overdue
from orders.models import Order
from tests.factories import fill_cart

pytestmark = pytest.mark.django_db

BODY = {
    "address": "1 Market Street",
    "signer_name": "Ada",
    "signer_mobile": "+15550100",
    "post": "12345",
    "note": "ring twice",
}


def test_the_close_refuses_an_order_a_moment_before_its_deadline_and_takes_it_at_it(user, goods_in_stock):
    goods = goods_in_stock(stock=10)
    fill_cart(user, (goods, 4))
    order = create_order(user=user, **BODY).order

    early = close_order_if_overdue(order=order, now=order.expires_at - timedelta(milliseconds=1))

    assert early == "skipped_not_due"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert Stock.objects.get(goods=goods).quantity == 6
    assert not StockMove.objects.filter(order_no=order.order_no, kind="return").exists()

    assert close_order_if_overdue(order=order, now=order.expires_at) == "closed"
    assert Stock.objects.get(goods=goods).quantity == 10


@pytest.mark.parametrize("field", sorted(BODY))
def test_an_idempotency_key_replayed_with_any_field_changed_is_refused(user, goods_in_stock, field):
    goods = goods_in_stock(stock=10)
    fill_cart(user, (goods, 1))
    first = create_order(user=user, idempotency_key="pay-1", **BODY).order
    fill_cart(user, (goods, 1))  # a cart to order again: the refusal must not come from an empty cart

    with pytest.raises(IdempotencyKeyReused):
        create_order(user=user, idempotency_key="pay-1", **{**BODY, field: BODY[field] + "0"})

    same = create_order(user=user, idempotency_key="pay-1", **BODY)
    assert (same.order.pk, same.created) == (first.pk, False)
    assert Order.objects.filter(user=user).count() == 1
    assert Stock.objects.get(goods=goods).quantity == 9
