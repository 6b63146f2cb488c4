"""The monitor from outside (contract v3): a real gunicorn with the trace store on; checkouts and a refusal
over HTTP; the operations JSON, read with a support user's token, counts exactly what was placed."""

import pytest
import requests
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from mall.roles import ensure_staff_roles
from orders.tracing import CHECKOUT_STEPS, CREATE_ORDER
from tests.factories import UserFactory, fill_cart
from tests.support import read_log, shop_env, shop_server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]  # the server writes on its own connection

CHECKOUTS = 3


@pytest.fixture
def support_token(db):
    ensure_staff_roles()
    person = UserFactory(is_staff=True)
    person.groups.add(Group.objects.get(name="support"))
    return Token.objects.create(user=person).key


def trace_of(response) -> str:
    return response.headers["traceresponse"].split("-")[1]


def test_the_operations_json_counts_exactly_the_checkouts_placed_in_its_window(
    tmp_path, user, goods_in_stock, address, support_token
):
    customer = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    support = {"Authorization": f"Token {support_token}"}
    goods = goods_in_stock(stock=50)
    env = shop_env(MALL_TRACE_STORE="on", JAEGER_UI_URL="")
    with shop_server(env=env, log_dir=tmp_path) as base_url, requests.Session() as http:
        traces = []
        for _ in range(CHECKOUTS):
            fill_cart(user, (goods, 1))
            placed = http.post(f"{base_url}/api/orders/", json=address, headers=customer, timeout=30)
            assert placed.status_code == 201, placed.text
            traces.append(placed.json()["trace_id"])
        refused = http.post(f"{base_url}/api/orders/", json=address, headers=customer, timeout=30)
        assert refused.status_code == 400 and refused.json()["code"] == "cart_empty"
        traces.append(trace_of(refused))

        def stored(trace_id: str) -> bool:
            answer = http.get(f"{base_url}/api/traces/{trace_id}/", headers=support, timeout=30)
            return answer.status_code == 200 and CREATE_ORDER in {span["name"] for span in answer.json()["spans"]}

        try:  # the store writes each batch about a second after it ends
            wait_until(lambda: all(stored(trace_id) for trace_id in traces), timeout=30, what="stored traces")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{read_log(tmp_path, 'gunicorn')[-3000:]}") from None

        response = http.get(f"{base_url}/api/traces/operations/?window=900", headers=support, timeout=30)
        assert response.status_code == 200
        operations = {operation["name"]: operation for operation in response.json()["operations"]}
        assert operations[CREATE_ORDER]["count"] == CHECKOUTS + 1
        assert operations[CREATE_ORDER]["refusals"] == 1 and operations[CREATE_ORDER]["errors"] == 0
        assert operations["POST api/orders/"]["count"] == CHECKOUTS + 1
        assert operations["POST api/orders/"]["refusals"] == 1
        for step in set(CHECKOUT_STEPS) - {"select_shopcart"}:
            assert operations[step]["count"] == CHECKOUTS, step
        assert operations[CREATE_ORDER]["p50_ms"] > 0

        bad = http.get(f"{base_url}/api/traces/operations/?window=soon", headers=support, timeout=30)
        assert bad.status_code == 400 and bad.json()["code"] == "invalid"
        assert http.get(f"{base_url}/api/traces/operations/", timeout=30).status_code in (401, 403)
