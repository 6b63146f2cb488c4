import pytest
from django.db import IntegrityError, transaction

from inventory.models import Stock, StockMove
from inventory.selectors import ledger_discrepancies
from inventory.services import set_stock_quantity


def test_stock_cannot_go_negative_in_the_database(goods_in_stock):
    goods = goods_in_stock(stock=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.filter(goods=goods).update(quantity=-1)

    assert Stock.objects.get(goods=goods).quantity == 1


def test_staff_adjustments_are_ledgered(goods_in_stock):
    goods = goods_in_stock(stock=10)

    set_stock_quantity(goods_id=goods.pk, quantity=4)

    moves = list(StockMove.objects.filter(goods=goods).values_list("kind", "quantity"))
    assert moves == [("adjust", 10), ("adjust", -6)]
    assert ledger_discrepancies() == []


def test_a_change_outside_the_ledger_is_detected(goods_in_stock):
    goods = goods_in_stock(stock=10)

    Stock.objects.filter(goods=goods).update(quantity=11)

    assert ledger_discrepancies() == [{"goods": goods.pk, "quantity": 11, "ledger": 10}]


def test_stock_is_readable_by_everyone_and_writable_by_staff_only(client, client_for, user, staff_user, goods_in_stock):
    goods = goods_in_stock(stock=5)

    assert client.get(f"/api/stock/{goods.pk}/").json()["quantity"] == 5
    edit = {"quantity": 50, "expected_quantity": 5}
    refused = client_for(user).patch(f"/api/stock/{goods.pk}/", edit, format="json")
    accepted = client_for(staff_user).patch(f"/api/stock/{goods.pk}/", edit, format="json")

    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert accepted.status_code == 200
    assert Stock.objects.get(goods=goods).quantity == 50


@pytest.mark.parametrize("quantity", [-1, "many", 10**12])
def test_invalid_stock_quantity_is_a_400(client_for, staff_user, goods_in_stock, quantity):
    goods = goods_in_stock(stock=5)

    edit = {"quantity": quantity, "expected_quantity": 5}
    response = client_for(staff_user).patch(f"/api/stock/{goods.pk}/", edit, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
