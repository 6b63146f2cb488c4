"""The HTTP edge on a real gunicorn: a request refused before its body was read (413, 401, 429) leaves
the client's keep-alive connection usable, and a body over the limit is 413 ``request_too_large``."""

import pytest
import requests
from django.conf import settings
from rest_framework.authtoken.models import Token

from mall.edge import DRAIN_MAX_BYTES
from tests.factories import UserFactory
from tests.support import shop_env, shop_server

ROUNDS = 40
# Over the API's body limit (64 KB) and over the 64 KB gunicorn 27 drains by itself.
BIG_BODY = b'{"address": "' + b"x" * (100 * 1024) + b'"}'


def refusals_keep_the_connection(session: requests.Session, base_url: str, expected_status: int, **kwargs) -> None:
    """ROUNDS times: the refused request, then a request on the same connection, which must be answered."""
    for attempt in range(ROUNDS):
        refused = session.post(f"{base_url}/api/orders/", data=BIG_BODY, timeout=30, **kwargs)
        assert refused.status_code == expected_status, (attempt, refused.text)
        assert refused.headers["Content-Type"].startswith("application/json")
        try:
            follow_up = session.get(f"{base_url}/api/goods/", timeout=30)
        except requests.ConnectionError as exc:
            raise AssertionError(f"the connection broke after refusal {attempt + 1} of {ROUNDS}: {exc}") from None
        assert follow_up.status_code == 200


@pytest.fixture
def token_user(transactional_db):
    user = UserFactory()
    user.token = Token.objects.create(user=user).key
    return user


@pytest.mark.slow
def test_413_401_and_429_leave_the_keep_alive_connection_usable(token_user, tmp_path):
    env = shop_env(CHECKOUT_THROTTLE_RATE="2/hour")
    json_headers = {"Content-Type": "application/json"}
    with shop_server(env=env, log_dir=tmp_path) as base_url, requests.Session() as session:
        refusals_keep_the_connection(session, base_url, 401, headers=json_headers)

        authorized = {**json_headers, "Authorization": f"Token {token_user.token}"}
        for _ in range(2):  # the checkout throttle's allowance (an empty cart: 400)
            assert session.post(f"{base_url}/api/orders/", json={}, headers=authorized, timeout=30).status_code == 400
        refusals_keep_the_connection(session, base_url, 429, headers=authorized)

        # A view that reads the body: over the limit → 413 request_too_large, the unread rest drained.
        for attempt in range(ROUNDS):
            refused = session.post(f"{base_url}/api/cart/", data=BIG_BODY, headers=authorized, timeout=30)
            assert refused.status_code == 413, (attempt, refused.text)
            assert refused.json()["code"] == "request_too_large"
            assert session.get(f"{base_url}/api/goods/", timeout=30).status_code == 200


@pytest.mark.slow
def test_a_body_too_large_to_drain_closes_the_connection_cleanly(token_user, tmp_path):
    """Past the drain bound the server announces ``Connection: close``: the client opens a new one."""
    huge = b"x" * (DRAIN_MAX_BYTES + 64 * 1024)
    with shop_server(env=shop_env(), log_dir=tmp_path) as base_url, requests.Session() as session:
        for _ in range(5):
            refused = session.post(f"{base_url}/api/orders/", data=huge, timeout=30)
            assert refused.status_code == 401
            assert refused.headers.get("Connection", "").lower() == "close"
            assert session.get(f"{base_url}/api/goods/", timeout=30).status_code == 200


def test_a_body_over_the_limit_is_413_naming_the_limit(api, user):
    api.force_authenticate(user)
    response = api.generic("POST", "/api/orders/", BIG_BODY, content_type="application/json")

    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "request_too_large"
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in body["detail"]
    assert body["limit"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
