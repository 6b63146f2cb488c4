"""Property tests of the checkout service: exact money, conserved stock, all or nothing.

Hypothesis reuses function-scoped fixtures across examples, so each example creates its own
user and goods inside the test body, in a savepoint rolled back when the example ends:
examples never see each other's data, and the database does not grow with the run.
"""

from decimal import Decimal

import pytest
from django.conf import settings
from hypothesis import HealthCheck, event, example, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from carts.models import CartItem
from carts.services import add_to_cart
from goods.models import Goods
from inventory.errors import InsufficientStock
from inventory.models import Stock, StockMove
from mall.errors import DomainError
from orders.checkout import create_order
from orders.invariants import check_invariants
from orders.models import Order
from tests.factories import ADDRESS, GoodsFactory, UserFactory
from tests.support import rolled_back


def _largest(field) -> Decimal:
    """The largest value a DecimalField stores, e.g. 999999999999.99 for 14 digits, 2 places."""
    return Decimal(10) ** (field.max_digits - field.decimal_places) - Decimal(1).scaleb(-field.decimal_places)


MAX_PRICE = _largest(Goods._meta.get_field("price"))
MAX_PAY_PRICE = _largest(Order._meta.get_field("pay_price"))

# Prices over the whole range of Goods.price, biased towards shop-like ones.
prices = st.one_of(
    st.decimals(min_value=Decimal("0.00"), max_value=Decimal("999.99"), places=2),
    st.decimals(min_value=Decimal("0.00"), max_value=MAX_PRICE, places=2),
)
# A cart line: (price, stock before the checkout, units wanted, checked). The stock is the units
# plus a headroom that is sometimes negative, so both placed and refused checkouts are common.
cart_line = st.builds(
    lambda price, nums, headroom, checked: (price, max(0, nums + headroom), nums, checked),
    prices,
    st.one_of(st.integers(min_value=1, max_value=60), st.integers(min_value=1, max_value=settings.MAX_CART_LINE_NUMS)),
    st.integers(min_value=-10, max_value=30),
    st.booleans(),
)
# 1–8 lines; the first one is checked (an empty checkout is another test's business).
carts = st.lists(cart_line, min_size=1, max_size=8).map(lambda lines: [(*lines[0][:3], True), *lines[1:]])


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=40,
    deadline=None,  # a checkout is a few dozen DB round trips; MariaDB timings vary
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=carts)
# A total beyond what Order.pay_price stores (found by this test): refused cleanly, never a DB error.
@example(lines=[(MAX_PRICE, 200, 200, True)])
@example(lines=[(Decimal("0.01"), 3, 3, True), (Decimal("0.00"), 0, 1, False), (Decimal("19.99"), 1, 2, True)])
def test_checkout_is_exact_and_all_or_nothing(lines):
    with rolled_back():  # the next example starts from the same database
        _check_one_checkout(lines)


def _check_one_checkout(lines):
    user = UserFactory()
    goods = [GoodsFactory(price=price, stock_quantity=stock) for price, stock, _, _ in lines]
    cart = list(zip(goods, lines, strict=True))
    for g, (_, _, nums, checked) in cart:
        add_to_cart(user=user, goods_id=g.pk, quantity=nums, checked=checked)
    goods_ids = [g.pk for g in goods]
    ordered = [(g, price, stock, nums) for g, (price, stock, nums, checked) in cart if checked]
    unchecked = [(g.pk, nums, False) for g, (_, _, nums, checked) in cart if not checked]
    short = sorted(g.pk for g, _, stock, nums in ordered if nums > stock)
    total = sum((price * nums for _, price, _, nums in ordered), Decimal("0.00"))
    too_large = total > MAX_PAY_PRICE
    note(f"total={total} short={short} too_large={too_large}")
    before = _shop_state(user, goods_ids)

    try:
        order = create_order(user=user, **ADDRESS).order
    except InsufficientStock as refused:
        event("refused: insufficient stock")
        assert short, "refused although every checked line had enough stock"
        assert refused.extra["goods"] == short
        assert _shop_state(user, goods_ids) == before  # no order, stock, ledger or cart change
    except DomainError as refused:
        event(f"refused: {refused.code}")
        assert too_large, f"refused with {refused.code!r} for a total of {total}"
        assert _shop_state(user, goods_ids) == before
    else:
        event("placed")
        assert not short, f"placed although goods {short} had too little stock"
        assert not too_large, f"placed an order of {total}, more than pay_price stores"
        order.refresh_from_db()  # what was stored, not what was computed
        assert order.pay_price == total
        assert order.pay_price.as_tuple().exponent == -2
        assert sorted(order.lines.values_list("goods_id", "nums", "goods_price")) == sorted(
            (g.pk, nums, price) for g, price, _, nums in ordered
        )
        after = _shop_state(user, goods_ids)
        # Ordered goods lose exactly the units ordered; unchecked lines stay in the cart, their stock untouched.
        assert after["stock"] == {**before["stock"], **{g.pk: stock - nums for g, _, stock, nums in ordered}}
        assert after["cart"] == unchecked
        assert after["orders"] == before["orders"] + 1
    assert check_invariants() == []


def _shop_state(user, goods_ids):
    return {
        "stock": dict(Stock.objects.filter(goods_id__in=goods_ids).values_list("goods_id", "quantity")),
        "cart": list(CartItem.objects.filter(user=user).order_by("id").values_list("goods_id", "nums", "checked")),
        "orders": Order.objects.filter(user=user).count(),
        "moves": StockMove.objects.filter(goods_id__in=goods_ids).count(),
    }
