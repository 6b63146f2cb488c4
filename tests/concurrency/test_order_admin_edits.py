"""A staff edit of an order in the admin writes only what the form changed, under the order's row lock,
never a status read before a pay or close committed; an ended order takes a note only; each edit is an
``edited`` event with the staff user.

The race is forced on MariaDB: another session holds the order's row (as a pay does between its update
and its commit) while the admin form is posted, then pays and commits. Before the fix the admin's
non-locking read saw ``pending`` and its full-row UPDATE, once the lock was released, wrote it back.
"""

import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, connections
from django.test import Client

from orders.checkout import create_order
from orders.models import Order, OrderEvent
from orders.services import cancel_order
from tests.admin_pages import read_form
from tests.factories import UserFactory, fill_cart
from tests.support import mariadb_sessions, session_running

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def support_user(db):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_order", "change_order"]))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def order(user, address, goods_in_stock):
    fill_cart(user, (goods_in_stock(stock=10), 2))
    return create_order(user=user, **address).order


def staff_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(order) -> str:
    return f"/admin/orders/order/{order.pk}/change/"


def post_edit(client, order, **changes):
    form = read_form(client, url(order), "order_form")
    form.update(changes)
    return client.post(url(order), form, follow=True)


def edits(order) -> list[tuple[str, str | None]]:
    events = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.EDITED)
    return [(event.actor, event.staff_user.username if event.staff_user else None) for event in events]


def test_an_edit_writes_the_changed_fields_and_records_an_edited_event(support_user, order):
    response = post_edit(staff_client(support_user), order, address="1 New Street")

    assert response.status_code == 200
    order.refresh_from_db()
    assert (order.address, order.status) == ("1 New Street", Order.Status.PENDING)
    assert edits(order) == [("staff", support_user.username)]


def test_an_ended_order_takes_a_note_but_not_an_address(support_user, order):
    cancel_order(order=order)
    client = staff_client(support_user)

    refused = post_edit(client, order, address="1 New Street")
    noted = post_edit(client, order, note="customer called")
    assert noted.status_code == 200

    order.refresh_from_db()
    assert "only its note can be changed" in refused.content.decode()
    assert order.address != "1 New Street"
    assert (order.note, order.status) == ("customer called", Order.Status.CANCELLED)
    assert edits(order) == [("staff", support_user.username)]


def test_an_edit_racing_a_payment_keeps_the_payment(support_user, order):
    if connection.vendor != "mysql":
        pytest.skip("row locks: MariaDB only (SQLite has a single writer)")
    client = staff_client(support_user)
    form = read_form(client, url(order), "order_form")
    form["address"] = "1 New Street"
    table = connection.ops.quote_name(Order._meta.db_table).replace("`", "")
    answers = []

    def post():
        try:
            answers.append(client.post(url(order), form).status_code)
        finally:
            connections.close_all()

    with mariadb_sessions(2) as (payer, watcher):
        cursor = payer.cursor()
        cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [order.pk])
        admin = threading.Thread(target=post)
        admin.start()
        try:
            # The admin's write (or, fixed, its locking read) now waits for the payer's lock.
            session_running(watcher, f"%{table}%", what="the admin's statement on the order row")
            cursor.execute(f"UPDATE {table} SET status = 'paid', paid_at = NOW(6) WHERE id = %s", [order.pk])
            payer.commit()
        finally:
            admin.join(timeout=30)

    assert answers == [302]
    order.refresh_from_db()
    assert (order.status, order.address) == (Order.Status.PAID, "1 New Street")
    assert order.paid_at is not None
    assert edits(order) == [("staff", support_user.username)]
