"""The checkout outcome metric names every refusal the checkout can answer; "error" is for faults only."""

import pytest

from orders.metrics import CHECKOUT_OUTCOMES
from tests.domain.test_metrics import measure  # noqa: F401 (fixture)
from tests.factories import fill_cart


@pytest.mark.django_db
@pytest.mark.parametrize("outcome", ["goods_unavailable", "order_too_large", "idempotency_key_reused"])
def test_each_refusal_counts_under_its_own_code(api, user, goods_in_stock, address, measure, outcome):  # noqa: F811
    headers = {}
    if outcome == "goods_unavailable":
        withdrawn = goods_in_stock()
        fill_cart(user, (withdrawn, 1))
        withdrawn.on_sale = False
        withdrawn.save()
    elif outcome == "order_too_large":
        fill_cart(user, (goods_in_stock(price="9999999999.99", stock=1000), 101))
    else:
        fill_cart(user, (goods_in_stock(), 1))
        headers = {"HTTP_IDEMPOTENCY_KEY": "order-1"}
        assert api.post("/api/orders/", address, format="json", **headers).status_code == 201
        address = {**address, "note": "a different body"}
    measured = measure()

    response = api.post("/api/orders/", address, format="json", **headers)

    assert response.status_code in (400, 409) and response.json()["code"] == outcome
    assert measured.change("mall.orders.placed", outcome=outcome) == 1
    assert measured.change("mall.orders.placed", outcome="error") == 0
    assert measured.count_change("mall.checkout.duration", outcome=outcome) == 1


def test_every_checkout_refusal_code_is_an_outcome():
    assert set(CHECKOUT_OUTCOMES) == {
        "placed",
        "cart_empty",
        "goods_unavailable",
        "order_too_large",
        "insufficient_stock",
        "idempotency_key_reused",
        "error",
    }
