"""Order ↔ trace in the admin: staff open an order's checkout trace in Jaeger from the list and the order page."""

import re

import pytest
from django.test import Client

from orders.services import create_order
from tests.factories import TEST_PASSWORD, fill_cart

ORDER_LIST = "/admin/orders/order/"


@pytest.fixture
def staff_client(staff_user):
    client = Client()
    assert client.login(username=staff_user.username, password=TEST_PASSWORD)
    return client


@pytest.fixture
def traced_order(user, goods_in_stock, address):
    fill_cart(user, (goods_in_stock(), 1))
    return create_order(user=user, **address).order


def trace_links(html: str) -> list[tuple[str, str]]:
    """(href, text) of every link whose text is "Open trace"."""
    return re.findall(r'<a href="([^"]+)"[^>]*>(Open trace)</a>', html)


@pytest.mark.django_db
def test_the_order_list_links_each_order_to_its_trace_in_jaeger(staff_client, traced_order):
    assert re.fullmatch(r"[0-9a-f]{32}", traced_order.trace_id)

    response = staff_client.get(ORDER_LIST, secure=True)

    assert response.status_code == 200
    assert trace_links(response.content.decode()) == [
        (f"http://localhost:16686/trace/{traced_order.trace_id}", "Open trace")
    ]


@pytest.mark.django_db
def test_the_order_page_links_to_its_trace_at_the_configured_jaeger(staff_client, traced_order, settings):
    settings.JAEGER_UI_URL = "https://jaeger.example.test"

    response = staff_client.get(f"{ORDER_LIST}{traced_order.pk}/change/", secure=True)

    assert response.status_code == 200
    assert trace_links(response.content.decode()) == [
        (f"https://jaeger.example.test/trace/{traced_order.trace_id}", "Open trace")
    ]


@pytest.mark.django_db
def test_an_order_without_a_trace_has_no_link(staff_client, traced_order):
    traced_order.trace_id = ""
    traced_order.save(update_fields=["trace_id"])

    response = staff_client.get(f"{ORDER_LIST}{traced_order.pk}/change/", secure=True)

    assert response.status_code == 200
    assert trace_links(response.content.decode()) == []


@pytest.mark.django_db
def test_customers_do_not_see_the_admin(user, traced_order):
    client = Client()
    client.force_login(user)

    response = client.get(ORDER_LIST, secure=True)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
