"""Security: ownership, staff-only writes, admin, CSRF, input limits, a clean ``check --deploy``."""

import json
import secrets
import subprocess
import sys

import pytest
from django.test import Client
from rest_framework.test import APIClient

from carts.models import CartItem
from inventory.models import Stock, StockMove
from orders.checkout import create_order
from orders.models import Order
from tests.factories import TEST_PASSWORD, fill_cart
from tests.support import REPO, shop_env

BEYOND_64_BITS = 2**64 + 1


@pytest.fixture
def pen(goods_in_stock):
    return goods_in_stock(price="2.50", stock=50)


@pytest.fixture
def others_order(other_user, pen, address):
    fill_cart(other_user, (pen, 2))
    return create_order(user=other_user, **address).order


@pytest.fixture
def others_cart_item(other_user, pen):
    fill_cart(other_user, (pen, 3))
    return CartItem.objects.get(user=other_user)


def _snapshot(order: Order):
    order.refresh_from_db()
    return order.status, order.updated_at, list(order.lines.values_list("goods_id", "nums"))


# --- Object-level ownership: another user's order or cart line does not exist for the caller.


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("post", "pay/"), ("post", "cancel/"), ("patch", ""), ("put", ""), ("delete", "")],
)
def test_another_users_order_is_not_found(api, others_order, method, suffix):
    before = _snapshot(others_order)

    response = getattr(api, method)(f"/api/orders/{others_order.pk}/{suffix}", {}, format="json")
    unknown = getattr(api, method)("/api/orders/999999/" + suffix, {}, format="json")

    # GET/pay/cancel: 404; PATCH/PUT/DELETE are not offered at all (405). Either way the answer
    # is the one for an id that does not exist: nothing tells the caller the order is there.
    assert response.status_code == unknown.status_code
    assert response.status_code in (404, 405)
    assert response.json() == unknown.json()
    if method in ("get", "post"):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert _snapshot(others_order) == before


def test_order_lists_show_only_the_callers_orders(api, user, others_order, pen, address):
    fill_cart(user, (pen, 1))
    mine = create_order(user=user, **address).order

    response = api.get("/api/orders/")

    assert [order["id"] for order in response.json()["results"]] == [mine.pk]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_users_cart_item_is_not_found(api, others_cart_item, method):
    response = getattr(api, method)(f"/api/cart/{others_cart_item.pk}/", {"nums": 9}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    others_cart_item.refresh_from_db()
    assert others_cart_item.nums == 3


def test_the_cart_shows_only_the_callers_lines(api, others_cart_item):
    assert api.get("/api/cart/").json() == []


def test_a_checkout_never_takes_another_users_cart_lines(api, user, others_cart_item, address):
    response = api.post("/api/orders/", address, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "cart_empty"
    assert CartItem.objects.filter(pk=others_cart_item.pk).exists()


# --- Stock is written by staff only, and every write is ledgered.


def test_a_shopper_cannot_set_stock(api, pen):
    response = api.patch(f"/api/stock/{pen.pk}/", {"quantity": 999, "expected_quantity": 50}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert Stock.objects.get(goods=pen).quantity == 50
    assert list(StockMove.objects.filter(goods=pen).values_list("kind", "quantity")) == [("adjust", 50)]


def test_an_anonymous_client_cannot_set_stock(pen):
    response = APIClient().patch(f"/api/stock/{pen.pk}/", {"delta": 949}, format="json")

    assert response.status_code in (401, 403)
    assert Stock.objects.get(goods=pen).quantity == 50


def test_staff_set_stock_and_the_change_is_ledgered(client_for, staff_user, pen):
    response = client_for(staff_user).patch(
        f"/api/stock/{pen.pk}/", {"quantity": 80, "expected_quantity": 50}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["quantity"] == 80
    assert Stock.objects.get(goods=pen).quantity == 80
    adjust = StockMove.objects.filter(goods=pen, kind="adjust").order_by("id").last()
    assert (adjust.quantity, adjust.order_no, adjust.user) == (30, None, staff_user)


# --- The admin is for staff.


def test_the_admin_sends_anonymous_visitors_to_its_login(db):
    response = Client().get("/admin/orders/order/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_refuses_a_logged_in_shopper(user):
    browser = Client()
    browser.force_login(user)

    assert browser.get("/admin/orders/order/").status_code == 302
    assert browser.get("/admin/inventory/stock/").status_code == 302


def test_a_shopper_cannot_log_into_the_admin(user):
    browser = Client()

    response = browser.post("/admin/login/", {"username": user.username, "password": TEST_PASSWORD})

    assert response.status_code == 200  # the form again, with an error
    assert "staff account" in response.content.decode()
    assert browser.get("/admin/").status_code == 302


def test_staff_can_use_the_admin(staff_user, others_order):
    browser = Client()
    browser.force_login(staff_user)

    assert browser.get("/admin/orders/order/").status_code == 200
    assert browser.get(f"/admin/orders/order/{others_order.pk}/change/").status_code == 200


# --- CSRF: a session (browser) is only trusted with a CSRF token; a token header needs none.


@pytest.fixture
def session_client(user):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=TEST_PASSWORD)
    return client


def test_a_session_write_without_csrf_token_is_refused(session_client, user, pen):
    response = session_client.post("/api/cart/", {"goods": pen.pk, "nums": 1}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not CartItem.objects.filter(user=user).exists()


def test_a_session_checkout_without_csrf_token_is_refused(session_client, user, pen, address):
    fill_cart(user, (pen, 1))

    response = session_client.post("/api/orders/", address, format="json")

    assert response.status_code == 403
    assert not Order.objects.filter(user=user).exists()
    assert Stock.objects.get(goods=pen).quantity == 50


def test_a_session_write_with_the_csrf_token_is_accepted(session_client, user, pen):
    session_client.get("/api/auth/login/")  # any form page sets the CSRF cookie
    token = session_client.cookies["csrftoken"].value

    response = session_client.post("/api/cart/", {"goods": pen.pk, "nums": 1}, format="json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201
    assert CartItem.objects.filter(user=user).count() == 1


def test_a_token_authenticated_write_needs_no_csrf_token(user, pen):
    from rest_framework.authtoken.models import Token

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    assert client.post("/api/cart/", {"goods": pen.pk, "nums": 1}, format="json").status_code == 201


# --- Input limits: oversized or absurd input is a 4xx, never a 500.


def _huge_json_order(address):
    return json.dumps({**address, "note": "x" * 200_000})  # > DATA_UPLOAD_MAX_MEMORY_SIZE


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/api/orders/", "huge-json", "application/json"),
        ("/api/cart/", "&".join(f"field{i}=1" for i in range(5000)), "application/x-www-form-urlencoded"),
        ("/api/cart/", "goods=1&nums=1&padding=" + "x" * 200_000, "application/x-www-form-urlencoded"),
    ],
    ids=["huge-json", "too-many-fields", "huge-form"],
)
def test_an_oversized_body_is_refused_not_a_server_error(api, user, pen, address, path, body, content_type):
    fill_cart(user, (pen, 1))
    body = _huge_json_order(address) if body == "huge-json" else body

    response = api.generic("POST", path, body, content_type=content_type)

    assert 400 <= response.status_code < 500
    assert not Order.objects.filter(user=user).exists()


def test_an_oversized_body_gets_the_api_error_shape(api, address):
    """The API's errors are ``{"code", "detail"}`` JSON, including the ones Django raises itself."""
    response = api.generic("POST", "/api/orders/", _huge_json_order(address), content_type="application/json")

    assert response.status_code in (400, 413)
    assert response["Content-Type"].startswith("application/json")
    assert {"code", "detail"} <= response.json().keys()


@pytest.mark.parametrize(
    ("field", "value"),
    [("address", "x" * 256), ("signer_name", "x" * 51), ("signer_mobile", "1" * 21), ("note", "x" * 501)],
)
def test_overlong_checkout_fields_are_refused(api, user, pen, address, field, value):
    fill_cart(user, (pen, 1))

    response = api.post("/api/orders/", {**address, field: value}, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Order.objects.filter(user=user).exists()


def test_an_overlong_idempotency_key_is_refused(api, user, pen, address):
    fill_cart(user, (pen, 1))

    response = api.post("/api/orders/", address, format="json", HTTP_IDEMPOTENCY_KEY="k" * 101)

    assert response.status_code == 400
    assert not Order.objects.filter(user=user).exists()


@pytest.mark.parametrize("nums", [0, -1, 10_000, 2**63, "1e9"])
def test_absurd_cart_quantities_are_refused(api, user, pen, nums):
    response = api.post("/api/cart/", {"goods": pen.pk, "nums": nums}, format="json")

    assert response.status_code == 400
    assert not CartItem.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/goods/{id}/"),
        ("get", "/api/stock/{id}/"),
        ("patch", "/api/stock/{id}/"),
        ("get", "/api/cart/{id}/"),
        ("patch", "/api/cart/{id}/"),
        ("delete", "/api/cart/{id}/"),
        ("get", "/api/orders/{id}/"),
        ("post", "/api/orders/{id}/pay/"),
        ("post", "/api/orders/{id}/cancel/"),
    ],
)
def test_ids_beyond_64_bits_are_not_found(client_for, staff_user, method, path):
    # Staff, so that the stock PATCH reaches the lookup instead of stopping at the permission check.
    response = getattr(client_for(staff_user), method)(path.format(id=BEYOND_64_BITS), {"nums": 1}, format="json")

    assert response.status_code == 404


def test_a_goods_id_beyond_64_bits_in_the_cart_is_refused(api, user):
    response = api.post("/api/cart/", {"goods": BEYOND_64_BITS, "nums": 1}, format="json")

    assert response.status_code == 400
    assert not CartItem.objects.filter(user=user).exists()


# --- Deployment settings.


def test_check_deploy_is_clean_in_production(db):
    """``check --deploy`` with the production environment: secret key, host, DEBUG and HTTPS defaults."""
    env = shop_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(45), DJANGO_ALLOWED_HOSTS="shop.example.com")
    for name in ("DJANGO_DEBUG", "DJANGO_SECURE_SSL_REDIRECT", "CHECKOUT_FAIL_STEP"):
        env.pop(name, None)
    assert len(env["DJANGO_SECRET_KEY"]) == 60

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
