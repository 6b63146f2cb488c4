"""Staff permissions are Django's model permissions, in the admin and the API; the roles seed_demo creates."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from inventory.models import Stock
from orders.checkout import create_order
from orders.models import Order
from tests.domain.test_stock_edits import staff_with
from tests.factories import UserFactory, fill_cart


@pytest.fixture
def pending_order(user, goods_in_stock, address):
    fill_cart(user, (goods_in_stock(name="Alpha", stock=10), 2))
    return create_order(user=user, **address).order


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def run_cancel_action(client, order):
    return client.post(
        "/admin/orders/order/", {"action": "cancel_pending", "_selected_action": [order.pk], "index": 0}, follow=True
    )


def test_a_view_only_staff_user_can_neither_see_nor_run_the_cancel_action(pending_order):
    viewer = staff_with("view_order")

    page = logged_in(viewer).get("/admin/orders/order/")
    response = run_cancel_action(logged_in(viewer), pending_order)

    assert page.status_code == 200
    assert "cancel_pending" not in page.content.decode()
    assert response.status_code == 200
    pending_order.refresh_from_db()
    assert pending_order.status == Order.Status.PENDING
    assert Stock.objects.get(goods__name="Alpha").quantity == 8


def test_staff_with_change_order_cancel_pending_orders_and_their_stock_returns(pending_order):
    support = staff_with("view_order", "change_order")

    response = run_cancel_action(logged_in(support), pending_order)

    pending_order.refresh_from_db()
    assert response.status_code == 200
    assert pending_order.status == Order.Status.CANCELLED
    assert Stock.objects.get(goods__name="Alpha").quantity == 10


def roled(role: str):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return type(user).objects.get(pk=user.pk)


def test_seed_demo_staff_creates_the_roles_and_they_mean_what_they_say(client_for, pending_order):
    call_command("seed_demo", goods=0, users=0, staff=True, stdout=io.StringIO())
    call_command("seed_demo", goods=0, users=0, staff=True, stdout=io.StringIO())  # idempotent
    support, clerk = roled("support"), roled("stock clerk")
    alpha = Stock.objects.get(goods__name="Alpha")

    assert set(Group.objects.values_list("name", flat=True)) == {"support", "stock clerk", "catalog manager"}
    assert client_for(support).patch(f"/api/stock/{alpha.pk}/", {"delta": 5}, format="json").status_code == 403
    assert client_for(clerk).patch(f"/api/stock/{alpha.pk}/", {"delta": 5}, format="json").status_code == 200
    run_cancel_action(logged_in(clerk), pending_order)
    pending_order.refresh_from_db()
    assert pending_order.status == Order.Status.PENDING
    assert logged_in(clerk).get(f"/admin/orders/order/{pending_order.pk}/change/").status_code == 403
    run_cancel_action(logged_in(support), pending_order)
    pending_order.refresh_from_db()
    assert pending_order.status == Order.Status.CANCELLED
    assert Stock.objects.get(pk=alpha.pk).quantity == 15  # 8 + 5 restocked + 2 returned
