"""Cart writes racing the checkout that takes their line: a clean answer (404 when the line is gone), never a 500."""

import threading

import pytest
from django.db import connection  # noqa: F401 - read by the skipif condition

from carts.models import CartItem
from orders.invariants import check_invariants
from orders.models import Order
from tests.factories import ADDRESS, GoodsFactory, UserFactory, fill_cart
from tests.support import alongside, mariadb_sessions, run_concurrently, session_running

pytestmark = pytest.mark.django_db(transaction=True)

on_mariadb_only = pytest.mark.skipif(
    "connection.vendor != 'mysql'", reason="waits on a row lock held by another session (SQLite locks the file)"
)


@pytest.fixture(autouse=True)
def _no_checkout_throttle(settings):
    settings.CHECKOUT_THROTTLE_RATE = None


@on_mariadb_only
@pytest.mark.parametrize(
    ("method", "statement"), [("patch", "UPDATE%carts_cartitem"), ("delete", "DELETE%carts_cartitem")]
)
def test_a_cart_write_that_waited_for_a_checkout_taking_its_line_is_a_404(client_for, method, statement):
    buyer = UserFactory()
    fill_cart(buyer, (GoodsFactory(), 1))
    line = CartItem.objects.get(user=buyer)
    client = client_for(buyer)
    # A checkout in progress: it holds the user's lines and has removed the ordered one, not yet committed.
    with mariadb_sessions(2) as (checkout, watcher):
        checkout.autocommit(False)
        checkout.cursor().execute("SELECT id FROM carts_cartitem WHERE user_id = %s FOR UPDATE", [buyer.pk])
        checkout.cursor().execute("DELETE FROM carts_cartitem WHERE id = %s", [line.pk])
        committed = threading.Event()

        def commit_once_the_write_waits():
            session_running(watcher, statement + "%", what=f"the {method} to wait for the line's lock")
            checkout.commit()
            committed.set()

        response = alongside(
            lambda: getattr(client, method)(f"/api/cart/{line.pk}/", {"nums": 5}, format="json"),
            commit_once_the_write_waits,
        )

    assert committed.is_set()
    assert response.status_code == 404
    assert response.json()["code"] == "cart_line_gone"
    assert not CartItem.objects.filter(pk=line.pk).exists()


def test_cart_posts_patches_and_deletes_racing_checkouts_get_clean_answers(client_for):
    goods = [GoodsFactory(stock_quantity=10_000) for _ in range(3)]
    buyer = UserFactory()
    client_for(buyer)  # its token exists before the threads start

    def act(step):
        client = client_for(buyer)
        kind = ("checkout", "post", "patch", "delete")[step % 4]
        if kind == "checkout":
            fill_cart(buyer, *[(g, 1) for g in goods])
            return kind, client.post("/api/orders/", ADDRESS, format="json")
        if kind == "post":
            return kind, client.post("/api/cart/", {"goods": goods[step % 3].pk, "nums": 1}, format="json")
        line = CartItem.objects.filter(user=buyer).order_by("?").first()
        if line is None:
            return kind, None
        if kind == "patch":
            return kind, client.patch(f"/api/cart/{line.pk}/", {"nums": 2, "checked": True}, format="json")
        return kind, client.delete(f"/api/cart/{line.pk}/")

    results = run_concurrently(act, list(range(80)), threads=6)

    allowed = {"checkout": {201, 400}, "post": {201}, "patch": {200, 404}, "delete": {204, 404}}
    answers = [(kind, response.status_code) for kind, response in results if response is not None]
    assert [a for a in answers if a[1] not in allowed[a[0]]] == []
    assert Order.objects.filter(user=buyer).exists()
    assert check_invariants() == []
