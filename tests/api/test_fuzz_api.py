"""Schemathesis against the app's own OpenAPI schema, every endpoint, in-process through WSGI.

The requests run through Django's real WSGI handler in the test's thread, so they see the
test's data (one database connection) and an error's traceback lands in the test output.
Schemathesis generates valid and invalid input (positive and negative modes) for every
operation; each response must not be a 5xx and must match the schema (status code, content
type, headers, body). Path ids are often swapped for real ones, the caller's or another
user's, so the fuzzing reaches the objects themselves and not just their 404s.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from carts.models import CartItem
from orders.checkout import create_order
from orders.invariants import check_invariants
from orders.models import Order
from orders.services import cancel_order, pay_order
from tests.factories import fill_cart
from tests.support import rolled_back

# "No 5xx, and every response is what the schema says", for valid and invalid input alike.
# Not positive_data_acceptance: a business rule may refuse a schema-valid request (empty cart,
# no stock, unknown id). Not negative_data_rejection: DRF is lenient by design with some input
# the schema calls invalid (a number for a string field, an empty ?page=), which is harmless.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Loaded at collection (serving the schema needs no database). Not from_fixture(): its lazy
# loader sets Node._nodeid, which pytest 9.2 no longer has (schemathesis 4.32).
schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """A real request ends with ``close_old_connections``, which would close the connection
    holding the test's transaction; Django's own test client disconnects it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def shop(settings, goods_in_stock, user, other_user, address):
    """Goods, the caller's cart and orders (pending, paid, cancelled), and another user's."""
    settings.CHECKOUT_THROTTLE_RATE = None  # hundreds of checkouts in a minute are the point here
    goods = [goods_in_stock(price=price, stock=100_000) for price in ("0.99", "12.50", "1999.00")]
    for who in (user, other_user):
        for status in ("pending", "paid", "cancelled"):
            fill_cart(who, (goods[0], 1), (goods[1], 2))
            order = create_order(user=who, **address).order
            if status == "paid":
                pay_order(order=order)
            elif status == "cancelled":
                cancel_order(order=order)
    fill_cart(user, (goods[0], 1), (goods[2], 1))
    fill_cart(other_user, (goods[2], 1))
    return {"goods": goods, "user": user, "other_user": other_user}


def _token_header(user) -> dict[str, str]:
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


def _candidate_ids(path: str, shop) -> tuple[list[int], list[int]]:
    """(the caller's ids, other users' ids) of the objects a path's id parameter names."""
    user, other = shop["user"], shop["other_user"]
    if path.startswith("/api/cart/"):
        return (
            list(CartItem.objects.filter(user=user).values_list("pk", flat=True)),
            list(CartItem.objects.filter(user=other).values_list("pk", flat=True)),
        )
    if path.startswith("/api/orders/"):
        return (
            list(Order.objects.filter(user=user).values_list("pk", flat=True)),
            list(Order.objects.filter(user=other).values_list("pk", flat=True)),
        )
    return [g.pk for g in shop["goods"]], []  # goods and stock are everyone's


_fuzz_settings = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@schema.given(data=st.data())
@_fuzz_settings
@pytest.mark.django_db
def test_every_endpoint_survives_fuzzing_and_matches_its_schema(case, data, shop):
    """As a shopper: every operation, valid and invalid input."""
    _call_and_check(case, data, shop, auth=_token_header(shop["user"]))


@schema.include(path_regex=r"^/api/stock/").parametrize()
@schema.given(data=st.data())
@_fuzz_settings
@pytest.mark.django_db
def test_stock_endpoints_survive_fuzzing_by_staff(case, data, shop, staff_user):
    """As staff, who may set stock (each change ledgered: the invariants still hold)."""
    _call_and_check(case, data, shop, auth=_token_header(staff_user))


def _call_and_check(case, data, shop, *, auth):
    foreign = False
    id_names = [name for name in (case.path_parameters or {}) if name in ("id", "goods")]
    if id_names and data.draw(st.booleans(), label="use a real id"):
        own, others = _candidate_ids(case.operation.path, shop)
        candidates = [(pk, False) for pk in own] + [(pk, True) for pk in others]
        case.path_parameters[id_names[0]], foreign = data.draw(st.sampled_from(candidates), label="id")
    with rolled_back():  # every example starts from the same shop, so Hypothesis can replay it
        response = case.call_and_validate(headers=auth, checks=CHECKS)
        if foreign:
            # Another user's cart line or order does not exist for the caller, whatever the method.
            assert response.status_code in (404, 405), response.text
        assert check_invariants() == []
