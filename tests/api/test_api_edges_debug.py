"""The API's error edges with DEBUG on (the default of `make run`) as with DEBUG off, and their log lines.

Unknown paths under /api/ are a JSON 404 ``not_found``, malformed JSON a 400 ``parse_error``; each
refused request is logged once, as a key=value line that names the request's trace.
"""

import re

import pytest
import requests
from rest_framework.authtoken.models import Token

from tests.support import read_log, shop_env, shop_server

KEY_VALUE_TRACE = re.compile(r"trace_id=([0-9a-f]{32}) span_id=[0-9a-f]{16} ")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_api_path_is_a_json_404(client, settings, debug, method):
    settings.DEBUG = debug
    for path in ["/api/nothing-here/", "/api/goods/1/nothing/", "/api/orders/1/refund/"]:
        response = getattr(client, method)(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json", path
        assert response.json()["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_known_pages_keep_their_answers_under_debug(client, settings, goods_in_stock, debug):
    settings.DEBUG = debug
    goods = goods_in_stock()
    assert client.get("/api/goods").status_code == 301  # APPEND_SLASH still redirects
    assert client.get("/api/goods").headers["Location"] == "/api/goods/"
    assert client.get(f"/api/goods/{goods.pk}/").json()["id"] == goods.pk
    missing = client.get("/api/goods/99999999/", HTTP_ACCEPT="text/html")  # a view's own 404: browsable
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/html")
    page = client.get("/nothing-here/")  # outside /api/: Django's page
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_malformed_json_is_a_parse_error(api, settings, debug):
    settings.DEBUG = debug
    for body in ['{"goods": 1, "nums": ', "[1, 2", "not json", '{"goods": 1}}']:
        response = api.post("/api/cart/", body, content_type="application/json")
        assert response.status_code == 400, body
        assert response.json()["code"] == "parse_error", body


def test_each_refused_request_is_logged_once_with_its_trace(transactional_db, tmp_path, user):
    token = Token.objects.create(user=user).key
    env = shop_env(DJANGO_DEBUG="1", CHECKOUT_THROTTLE_RATE="1/minute")
    env.pop("DJANGO_SECRET_KEY", None)
    headers = {"Authorization": f"Token {token}"}
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        refused = requests.post(f"{base_url}/api/orders/", json={}, headers=headers, timeout=10)
        throttled = requests.post(f"{base_url}/api/orders/", json={}, headers=headers, timeout=10)
        unknown = requests.get(f"{base_url}/api/no-such-thing/", timeout=10)
    log = read_log(tmp_path, "gunicorn")

    assert (refused.status_code, throttled.status_code, unknown.status_code) == (400, 429, 404)
    assert unknown.json()["code"] == "not_found"
    for response, message in [
        (refused, "Bad Request: /api/orders/"),
        (throttled, "Too Many Requests: /api/orders/"),
        (unknown, "Not Found: /api/no-such-thing/"),
    ]:
        lines = [line for line in log.splitlines() if message in line]
        assert len(lines) == 1, (message, log[-3000:])  # once: no second, plain copy
        (line,) = lines
        assert "level=WARNING logger=django.request" in line
        trace_id = response.headers["traceresponse"].split("-")[1]
        assert KEY_VALUE_TRACE.search(line).group(1) == trace_id
