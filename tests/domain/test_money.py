"""Money checked as money: every pay_price equals the exact Decimal sum of its lines, however it is printed.

Values are compared as ``Decimal`` (so "6.0" and "6.00" are equal, and 0.30000000000000004 is not
0.30): the value the checkout computed, the stored one, the API's string and Σ goods_price × nums of
the stored lines. A total summed in float is off by a fraction of a cent for most carts of cents.
"""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from orders.checkout import create_order
from orders.models import Order
from tests.factories import ADDRESS, GoodsFactory, UserFactory, fill_cart
from tests.support import rolled_back

# Shop-like prices (cents matter most: 0.10, 3.35, 19.99) and units; at most 8 lines.
lines_of_a_cart = st.lists(
    st.tuples(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2), st.integers(1, 40)),
    min_size=1,
    max_size=8,
)


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=lines_of_a_cart)
@example(lines=[(Decimal("0.10"), 3)])  # 0.1 × 3 in float is 0.30000000000000004
@example(lines=[(Decimal("3.35"), 3), (Decimal("0.10"), 7)])  # 10.75; in float 10.749999999999998
def test_pay_price_is_the_exact_decimal_sum_of_the_lines(lines):
    with rolled_back():  # each example starts from the same database
        _check_pay_price(lines)


def _check_pay_price(lines):
    user = UserFactory()
    fill_cart(user, *[(GoodsFactory(price=price, stock_quantity=nums), nums) for price, nums in lines])
    expected = sum((price * nums for price, nums in lines), Decimal("0"))

    computed = create_order(user=user, **ADDRESS).order.pay_price

    order = Order.objects.get(user=user)
    client = APIClient()
    client.force_authenticate(user)
    shown = client.get(f"/api/orders/{order.pk}/").json()["pay_price"]
    stored_lines = sum((line.goods_price * line.nums for line in order.lines.all()), Decimal("0"))
    assert type(computed) is Decimal, f"pay_price computed as {type(computed).__name__}"
    assert (computed, order.pay_price, Decimal(shown), stored_lines) == (expected,) * 4
