"""``place_test_orders`` prints trace links only where they open: Jaeger, the built-in trace view, or none."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orders.models import Order

PASSWORD = "demo-pass-123"


def run(**options) -> str:
    call_command("seed_demo", goods=4, stock=100, users=2, password=PASSWORD, stdout=StringIO())
    out = StringIO()
    call_command("place_test_orders", orders=3, users=2, quiet=True, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_with_the_store_on_and_no_jaeger_the_links_open_the_built_in_view(settings):
    settings.JAEGER_UI_URL, settings.MALL_TRACE_STORE = "", True

    text = run()

    links = re.findall(r"^  (/admin/traces/([0-9a-f]{32})/)  \(", text, flags=re.MULTILINE)
    assert len(links) == 3
    assert {trace_id for _, trace_id in links} == set(Order.objects.values_list("trace_id", flat=True)) - {""}
    assert "http://" not in text  # no Jaeger link that would lead to a refused connection
    assert "MALL_SHOP_URL" in text  # how to make them links


@pytest.mark.django_db(transaction=True)
def test_with_no_trace_viewer_it_prints_trace_ids_and_no_links(settings):
    settings.JAEGER_UI_URL, settings.MALL_TRACE_STORE = "", False

    text = run()

    assert "/trace" not in text and "http" not in text
    assert "no trace viewer" in text
    assert len(re.findall(r"^  [0-9a-f]{32}  \(", text, flags=re.MULTILINE)) == 3


@pytest.mark.django_db(transaction=True)
def test_with_the_shops_url_set_the_in_process_links_are_absolute(settings):
    settings.JAEGER_UI_URL, settings.MALL_TRACE_STORE = "", True
    settings.MALL_SHOP_URL = "http://shop.example:8000"

    text = run()

    links = re.findall(r"^  (http://shop\.example:8000/admin/traces/[0-9a-f]{32}/)  \(", text, flags=re.MULTILINE)
    assert len(links) == 3
    assert "MALL_SHOP_URL" not in text  # no hint: the links open as they are


@pytest.mark.django_db
def test_a_shop_url_that_is_no_url_is_refused(settings):
    settings.MALL_SHOP_URL = "shop.example:8000"

    with pytest.raises(CommandError, match="MALL_SHOP_URL"):
        call_command("place_test_orders", orders=1, users=1, quiet=True, stdout=StringIO(), stderr=StringIO())
