"""Staff stock edits never write back a quantity that changed since it was read (API and admin)."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.invariants import check_invariants
from tests.admin_pages import page_messages, read_form
from tests.factories import UserFactory, fill_cart


def staff_with(*codenames):
    """A staff account holding exactly these model permissions."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # a fresh permission cache


@pytest.fixture
def clerk(db):
    return staff_with("view_stock", "change_stock", "view_stockmove")


@pytest.fixture
def admin_client(staff_user):
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def sell(user, address):
    def sell(goods, units):
        fill_cart(user, (goods, units))
        return create_order(user=user, **address).order

    return sell


def quantity(goods) -> int:
    return Stock.objects.get(goods=goods).quantity


def adjustments(goods) -> list[tuple[int, str | None]]:
    moves = StockMove.objects.filter(goods=goods, kind="adjust").order_by("id")
    return [(move.quantity, move.user.username if move.user else None) for move in moves]


# --- API: PATCH /api/stock/{goods_id}/


def test_a_delta_adds_units_and_is_ledgered_with_the_staff_user(client_for, clerk, goods_in_stock):
    goods = goods_in_stock(stock=10)

    response = client_for(clerk).patch(f"/api/stock/{goods.pk}/", {"delta": 5}, format="json")

    assert response.status_code == 200
    assert response.json()["quantity"] == 15
    assert adjustments(goods) == [(10, None), (5, clerk.username)]


def test_a_negative_delta_never_takes_stock_below_zero(client_for, clerk, goods_in_stock):
    goods = goods_in_stock(stock=3)

    taken = client_for(clerk).patch(f"/api/stock/{goods.pk}/", {"delta": -3}, format="json")
    refused = client_for(clerk).patch(f"/api/stock/{goods.pk}/", {"delta": -1}, format="json")

    assert (taken.status_code, taken.json()["quantity"]) == (200, 0)
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_stock"
    assert quantity(goods) == 0
    assert adjustments(goods) == [(3, None), (-3, clerk.username)]


def test_a_delta_keeps_the_units_sold_since_the_read(client_for, clerk, goods_in_stock, sell):
    goods = goods_in_stock(stock=100)
    client_for(clerk).get(f"/api/stock/{goods.pk}/")  # the clerk reads 100 ...
    sell(goods, 10)  # ... a customer buys 10 ...

    response = client_for(clerk).patch(f"/api/stock/{goods.pk}/", {"delta": 20}, format="json")

    assert response.json()["quantity"] == 110  # ... and the restock adds to the 90 left
    assert check_invariants() == []


def test_a_quantity_is_set_only_if_the_stock_is_still_the_expected_one(client_for, clerk, goods_in_stock, sell):
    goods = goods_in_stock(stock=100)
    sell(goods, 10)

    stale = client_for(clerk).patch(
        f"/api/stock/{goods.pk}/", {"quantity": 100, "expected_quantity": 100}, format="json"
    )
    fresh = client_for(clerk).patch(f"/api/stock/{goods.pk}/", {"quantity": 95, "expected_quantity": 90}, format="json")

    assert stale.status_code == 409
    assert stale.json()["code"] == "stock_changed"
    assert stale.json()["quantity"] == 90
    assert fresh.status_code == 200
    assert quantity(goods) == 95
    assert adjustments(goods) == [(100, None), (5, clerk.username)]
    assert check_invariants() == []


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": 50},
        {"expected_quantity": 5},
        {},
        {"delta": 1, "quantity": 6, "expected_quantity": 5},
        {"delta": "x"},
    ],
)
def test_a_bare_quantity_or_a_mixed_body_is_a_400(client_for, clerk, goods_in_stock, body):
    goods = goods_in_stock(stock=5)

    response = client_for(clerk).patch(f"/api/stock/{goods.pk}/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert quantity(goods) == 5


def test_the_stock_api_needs_the_change_stock_permission_not_just_is_staff(client_for, goods_in_stock):
    goods = goods_in_stock(stock=5)
    staff_without_it = staff_with("view_stock", "view_order", "change_order")
    clerk = staff_with("change_stock")

    refused = client_for(staff_without_it).patch(f"/api/stock/{goods.pk}/", {"delta": 1}, format="json")
    accepted = client_for(clerk).patch(f"/api/stock/{goods.pk}/", {"delta": 1}, format="json")

    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert accepted.status_code == 200
    assert quantity(goods) == 6


@pytest.mark.parametrize("method", ["delete", "put", "post"])
def test_the_stock_api_deletes_and_replaces_nothing(client_for, staff_user, goods_in_stock, method):
    goods = goods_in_stock(stock=5)
    path = f"/api/stock/{goods.pk}/" if method != "post" else "/api/stock/"

    response = getattr(client_for(staff_user), method)(path, {"quantity": 0}, format="json")

    assert response.status_code == 405
    assert quantity(goods) == 5 and StockMove.objects.filter(goods=goods).count() == 1


# --- Admin: the stock list (list_editable), the stock form, the goods page's stock inline.


def test_the_stock_list_does_not_resurrect_units_sold_while_it_was_open(admin_client, staff_user, goods_in_stock, sell):
    alpha = goods_in_stock(name="Alpha", stock=100)
    beta = goods_in_stock(name="Beta", stock=50)
    page = read_form(admin_client, "/admin/inventory/stock/", "changelist-form")
    sell(alpha, 10)  # while the page is open

    rows = {page[f"form-{i}-goods"]: i for i in range(int(page["form-TOTAL_FORMS"]))}
    page[f"form-{rows[str(beta.pk)]}-quantity"] = "60"  # only Beta is edited
    response = admin_client.post("/admin/inventory/stock/", {**page, "_save": "Save"}, follow=True)

    assert response.status_code == 200
    assert quantity(alpha) == 90
    assert quantity(beta) == 60
    assert adjustments(alpha) == [(100, None)]
    assert adjustments(beta) == [(50, None), (10, staff_user.username)]
    assert check_invariants() == []


def test_a_stock_list_edit_of_a_row_that_moved_is_refused_and_the_other_rows_apply(
    admin_client, staff_user, goods_in_stock, sell
):
    alpha = goods_in_stock(name="Alpha", stock=100)
    beta = goods_in_stock(name="Beta", stock=50)
    page = read_form(admin_client, "/admin/inventory/stock/", "changelist-form")
    rows = {page[f"form-{i}-goods"]: i for i in range(int(page["form-TOTAL_FORMS"]))}
    assert page[f"form-{rows[str(alpha.pk)]}-expected_quantity"] == "100"  # the page carries what it showed
    sell(alpha, 10)

    page[f"form-{rows[str(alpha.pk)]}-quantity"] = "120"
    page[f"form-{rows[str(beta.pk)]}-quantity"] = "55"
    response = admin_client.post("/admin/inventory/stock/", {**page, "_save": "Save"}, follow=True)

    shown = page_messages(response)
    assert any("Alpha" in m and "NOT changed" in m and "90" in m for m in shown), shown
    assert any("1 other stock edit(s) saved" in m for m in shown), shown
    assert not any("changed successfully" in m for m in shown), shown
    assert (quantity(alpha), quantity(beta)) == (90, 55)
    assert adjustments(alpha) == [(100, None)]
    assert check_invariants() == []


def test_the_stock_form_reports_a_conflict_and_shows_the_current_quantity(admin_client, goods_in_stock, sell):
    alpha = goods_in_stock(name="Alpha", stock=100)
    url = f"/admin/inventory/stock/{alpha.pk}/change/"
    page = read_form(admin_client, url, "stock_form")
    sell(alpha, 10)

    page["quantity"] = "150"
    response = admin_client.post(url, page)
    again = admin_client.get(response.url)

    assert response.status_code == 302 and response.url == url
    assert any("NOT changed" in m and "90" in m for m in page_messages(again))
    assert read_form(admin_client, url, "stock_form")["quantity"] == "90"
    assert quantity(alpha) == 90


def test_the_stock_form_saves_an_edit_through_the_ledger(admin_client, staff_user, goods_in_stock):
    alpha = goods_in_stock(name="Alpha", stock=100)
    url = f"/admin/inventory/stock/{alpha.pk}/change/"
    page = read_form(admin_client, url, "stock_form")

    page["quantity"] = "80"
    response = admin_client.post(url, page)

    assert response.status_code == 302 and response.url == "/admin/inventory/stock/"
    assert adjustments(alpha) == [(100, None), (-20, staff_user.username)]


def test_the_stock_page_is_titled_by_the_goods_and_its_ledger_is_readable(admin_client, goods_in_stock, sell):
    alpha = goods_in_stock(name="Alpha", stock=100)
    sell(alpha, 3)

    html = admin_client.get(f"/admin/inventory/stock/{alpha.pk}/change/").content.decode()

    assert "<title>Alpha | Change stock" in html
    assert ": 100" not in html and ": 97" not in html
    ledger = html[html.index("<th>when</th>") :]
    times = re.findall(r"<td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)</td>", ledger)
    assert len(times) == 2 and not re.search(r"\d\d:\d\d:\d\d\.\d", ledger)  # to the second
    assert ledger.index("sell") < ledger.index("adjust")  # newest first


def test_nothing_deletes_stock_or_ledger_rows_in_the_admin(admin_client, goods_in_stock):
    alpha = goods_in_stock(name="Alpha", stock=100)
    move = StockMove.objects.get(goods=alpha)

    stock_delete = admin_client.post(f"/admin/inventory/stock/{alpha.pk}/delete/", {"post": "yes"})
    move_delete = admin_client.post(f"/admin/inventory/stockmove/{move.pk}/delete/", {"post": "yes"})
    goods_delete = admin_client.post(f"/admin/goods/goods/{alpha.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(
        "/admin/inventory/stock/", {"action": "delete_selected", "_selected_action": [alpha.pk], "post": "yes"}
    )
    change_page = admin_client.get(f"/admin/inventory/stock/{alpha.pk}/change/").content.decode()

    assert (stock_delete.status_code, move_delete.status_code, goods_delete.status_code) == (403, 403, 403)
    assert "deletelink" not in change_page
    assert bulk.status_code in (200, 302)
    assert Stock.objects.filter(goods=alpha).exists() and StockMove.objects.filter(pk=move.pk).exists()


# --- Admin: the goods page adds and changes goods, its stock through the inventory service.


def test_adding_a_goods_in_the_admin_creates_its_ledgered_stock_row(admin_client, staff_user, db):
    page = read_form(admin_client, "/admin/goods/goods/add/", "goods_form")
    page.update({"name": "Gamma", "price": "4.20", "on_sale": "on", "stock-0-quantity": "25"})

    response = admin_client.post("/admin/goods/goods/add/", page)

    assert response.status_code == 302, response.content.decode()[:2000]
    stock = Stock.objects.select_related("goods").get(goods__name="Gamma")
    assert stock.quantity == 25
    assert adjustments(stock.goods) == [(25, staff_user.username)]
    assert check_invariants() == []


def test_adding_a_goods_without_a_quantity_still_gives_it_a_stock_row(admin_client, db):
    page = read_form(admin_client, "/admin/goods/goods/add/", "goods_form")
    page.update({"name": "Delta", "price": "1.00"})

    response = admin_client.post("/admin/goods/goods/add/", page)

    assert response.status_code == 302
    assert Stock.objects.get(goods__name="Delta").quantity == 0


def test_changing_a_goods_saves_it_and_its_stock_against_the_quantity_shown(
    admin_client, staff_user, goods_in_stock, sell
):
    alpha = goods_in_stock(name="Alpha", price="5.00", stock=100)
    url = f"/admin/goods/goods/{alpha.pk}/change/"
    page = read_form(admin_client, url, "goods_form")
    assert page["stock-0-expected_quantity"] == "100"

    page.update({"price": "6.00", "stock-0-quantity": "110"})
    saved = admin_client.post(url, page)
    alpha.refresh_from_db()

    assert saved.status_code == 302
    assert (alpha.price, quantity(alpha)) == (6, 110)
    assert adjustments(alpha) == [(100, None), (10, staff_user.username)]

    stale = read_form(admin_client, url, "goods_form")
    sell(alpha, 10)
    stale.update({"name": "Alpha II", "stock-0-quantity": "200"})
    conflict = admin_client.post(url, stale)
    alpha.refresh_from_db()

    assert conflict.status_code == 302 and conflict.url == url
    assert any("NOT changed" in m for m in page_messages(admin_client.get(url)))
    assert (alpha.name, quantity(alpha)) == ("Alpha II", 100)  # the goods saved; the stale stock refused
    assert check_invariants() == []


def test_a_goods_with_a_ledger_cannot_be_deleted_by_code_either(goods_in_stock):
    from django.db.models import ProtectedError

    alpha = goods_in_stock(name="Alpha", stock=1)

    with pytest.raises(ProtectedError):
        alpha.delete()
    assert Stock.objects.filter(goods=alpha).exists()
