"""Order ↔ trace in the admin: links lead where the trace opens (docs/api.md, "Traces").

JAEGER_UI_URL set: Jaeger. Unset with the trace store on: the built-in view /admin/traces/<id>/.
Unset with the store off: no link at all (a link to nowhere is worse than none).
"""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from orders.checkout import create_order
from orders.models import OrderEvent
from orders.services import pay_order
from tests.factories import TEST_PASSWORD, UserFactory, fill_cart

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


@pytest.fixture
def jaeger(settings):
    settings.JAEGER_UI_URL = "https://jaeger.example.test"
    return settings.JAEGER_UI_URL


@pytest.fixture
def store_on(settings):
    settings.JAEGER_UI_URL = ""
    settings.MALL_TRACE_STORE = True


@pytest.fixture
def nowhere(settings):
    settings.JAEGER_UI_URL = ""
    settings.MALL_TRACE_STORE = False


def trace_links(html: str) -> list[str]:
    """The href of every link whose text is "Open trace"."""
    return re.findall(r'<a href="([^"]+)"[^>]*>Open trace</a>', html)


def search_links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"[^>]*>Find traces by mall.order.no</a>', html)


def page(client, url: str) -> str:
    response = client.get(url, secure=True)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_with_jaeger_configured_the_order_list_links_each_order_to_jaeger(staff_client, traced_order, jaeger):
    assert re.fullmatch(r"[0-9a-f]{32}", traced_order.trace_id)

    assert trace_links(page(staff_client, ORDER_LIST)) == [f"{jaeger}/trace/{traced_order.trace_id}"]


@pytest.mark.django_db
def test_without_jaeger_the_links_open_the_built_in_trace_view(staff_client, traced_order, store_on):
    assert trace_links(page(staff_client, ORDER_LIST)) == [f"/admin/traces/{traced_order.trace_id}/"]


@pytest.mark.django_db
def test_without_jaeger_and_without_the_store_there_is_no_link(staff_client, traced_order, nowhere):
    assert trace_links(page(staff_client, ORDER_LIST)) == []
    html = page(staff_client, f"{ORDER_LIST}{traced_order.pk}/change/")
    assert trace_links(html) == [] and search_links(html) == []


@pytest.mark.django_db
def test_the_order_page_links_the_order_and_each_event_to_its_trace_and_to_the_search_by_order_no(
    staff_client, traced_order, jaeger
):
    pay_order(order=traced_order)
    placed, paid = OrderEvent.objects.filter(order=traced_order).order_by("id")

    html = page(staff_client, f"{ORDER_LIST}{traced_order.pk}/change/")

    assert paid.trace_id and paid.trace_id != placed.trace_id == traced_order.trace_id
    assert trace_links(html) == [
        f"{jaeger}/trace/{trace_id}" for trace_id in (placed.trace_id, placed.trace_id, paid.trace_id)
    ]
    [search] = search_links(html)
    url = urlsplit(search.replace("&amp;", "&"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{jaeger}/search"
    assert json.loads(parse_qs(url.query)["tags"][0]) == {"mall.order.no": traced_order.order_no}
    assert parse_qs(url.query)["service"] == ["mall"]


@pytest.mark.django_db
def test_the_search_by_order_no_uses_the_built_in_list_without_jaeger(staff_client, traced_order, store_on):
    html = page(staff_client, f"{ORDER_LIST}{traced_order.pk}/change/")

    assert search_links(html) == [f"/admin/traces/?order_no={traced_order.order_no}"]


@pytest.mark.django_db
def test_an_order_without_a_trace_has_no_link(staff_client, traced_order, jaeger):
    traced_order.trace_id = ""
    traced_order.save(update_fields=["trace_id"])
    traced_order.events.update(trace_id="")

    assert trace_links(page(staff_client, f"{ORDER_LIST}{traced_order.pk}/change/")) == []


@pytest.mark.django_db
def test_customers_do_not_see_the_admin_nor_the_traces(user, traced_order):
    client = Client()
    client.force_login(user)

    for url in (ORDER_LIST, "/admin/traces/", f"/admin/traces/{traced_order.trace_id}/"):
        response = client.get(url, secure=True)
        assert response.status_code == 302, url
        assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_staff_without_the_view_permission_are_refused_the_traces(traced_order):
    clerk = UserFactory(is_staff=True)
    client = Client()
    client.force_login(clerk)

    assert client.get("/admin/traces/", secure=True).status_code == 403
    assert client.get(f"/admin/traces/{traced_order.trace_id}/", secure=True).status_code == 403


def staff_without_traces():
    """Staff who may see and change orders but not open traces."""
    from django.contrib.auth.models import Permission

    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_order", "change_order"]))
    return type(user).objects.get(pk=user.pk)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("viewer", ["jaeger", "store_on"])
def test_staff_who_may_not_open_traces_are_shown_no_trace_link(viewer, request, traced_order):
    request.getfixturevalue(viewer)
    client = logged_in(staff_without_traces())
    pay_order(order=traced_order)
    change_page = page(client, f"{ORDER_LIST}{traced_order.pk}/change/")
    assert traced_order.order_no in change_page  # the order itself is shown
    assert trace_links(page(client, ORDER_LIST)) == []
    assert trace_links(change_page) == [] and search_links(change_page) == []
    assert client.get(f"/admin/traces/{traced_order.trace_id}/", secure=True).status_code == 403


def test_the_support_role_is_shown_trace_links_and_opens_them(store_on, traced_order):
    from django.contrib.auth.models import Group

    from mall.roles import ensure_staff_roles

    ensure_staff_roles()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    client = logged_in(type(user).objects.get(pk=user.pk))
    links = trace_links(page(client, f"{ORDER_LIST}{traced_order.pk}/change/"))
    assert links and links[0] == f"/admin/traces/{traced_order.trace_id}/"
    assert client.get(links[0], secure=True).status_code != 403  # 404 here: the test wrote no spans to the store
    assert client.get("/admin/traces/", secure=True).status_code == 200
