"""A refused log-in form (a locked username, or too many attempts from one address) answers 429 with
Retry-After and a page in the form's own look saying when to try again; the per-address rate of the
token endpoint counts the forms' attempts too."""

import re

import pytest
from django.test import Client

from tests.factories import TEST_PASSWORD, UserFactory

LIMIT = 10  # the default MALL_LOGIN_FAILURE_LIMIT
FORMS = {"admin": "/admin/login/?next=/admin/", "browsable API": "/api/auth/login/"}


@pytest.fixture
def victim(db):
    return UserFactory(is_staff=True)


def text(response) -> str:
    """The page's words, without tags (non-breaking spaces as spaces)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.content.decode())).replace("\xa0", " ")


def lock_out(url: str, username: str, client: Client | None = None):
    client = client or Client()
    for n in range(LIMIT):
        assert client.post(url, {"username": username, "password": f"guess-{n}"}).status_code == 200  # the form again
    return client.post(url, {"username": username, "password": TEST_PASSWORD})


def test_a_locked_admin_log_in_gets_the_admins_page(victim):
    locked = lock_out(FORMS["admin"], victim.username)

    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    assert locked["Content-Type"].startswith("text/html")
    page = locked.content.decode()
    assert 'id="site-name"' in page and "mall admin" in page  # admin/base_site.html's header
    assert "<title>Log-in locked | mall admin</title>" in page
    assert "Try again in 15 minutes, after" in text(locked)
    assert 'href="/admin/login/?next=/admin/"' in page


def test_a_locked_browsable_api_log_in_gets_the_browsable_apis_page(victim):
    locked = lock_out(FORMS["browsable API"], victim.username)

    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    page = locked.content.decode()
    assert "rest_framework/css/bootstrap.min.css" in page  # rest_framework/base.html's look
    assert "Log-in locked" in page and "Try again in 15 minutes, after" in text(locked)
    assert "{" not in page.split("<body", 1)[1]  # no raw JSON on the page


@pytest.mark.parametrize("form", FORMS)
def test_a_script_posting_to_a_locked_form_gets_the_apis_error_body(victim, form):
    client = Client(headers={"Accept": "application/json"})
    for n in range(LIMIT):
        client.post(FORMS[form], {"username": victim.username, "password": f"guess-{n}"})

    locked = client.post(FORMS[form], {"username": victim.username, "password": TEST_PASSWORD})

    assert locked.status_code == 429
    assert locked.json()["code"] == "login_locked"


@pytest.mark.parametrize("form", FORMS)
def test_a_form_throttles_one_address_whatever_usernames_it_tries(victim, settings, form):
    settings.MALL_LOGIN_THROTTLE_RATE = "5/minute"
    guesser, other = Client(REMOTE_ADDR="203.0.113.9"), Client(REMOTE_ADDR="198.51.100.30")
    assert guesser.get(FORMS[form]).status_code == 200  # showing the form is no attempt

    answers = [guesser.post(FORMS[form], {"username": f"user-{n}", "password": "x"}) for n in range(6)]

    assert [answer.status_code for answer in answers] == [200] * 5 + [429]
    refused = answers[-1]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "Too many log-in attempts" in refused.content.decode()
    assert re.search(r"Try again in (\d+ seconds, after \d\d:\d\d:\d\d|1 minute, after \d\d:\d\d) UTC\.", text(refused))
    assert other.post(FORMS[form], {"username": victim.username, "password": TEST_PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_a_throttled_form_answers_a_script_with_throttled(settings):
    settings.MALL_LOGIN_THROTTLE_RATE = "1/minute"
    client = Client(REMOTE_ADDR="203.0.113.10", headers={"Accept": "application/json"})
    client.post(FORMS["admin"], {"username": "a", "password": "x"})

    refused = client.post(FORMS["admin"], {"username": "b", "password": "x"})

    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"


@pytest.mark.django_db
def test_the_token_endpoint_and_the_forms_share_one_count_per_address(settings):
    settings.MALL_LOGIN_THROTTLE_RATE = "3/minute"
    client = Client(REMOTE_ADDR="203.0.113.11")
    attempt = {"username": "nobody", "password": "x"}

    statuses = [
        client.post("/api/auth/token/", attempt).status_code,
        client.post(FORMS["admin"], attempt).status_code,
        client.post(FORMS["browsable API"], attempt).status_code,
        client.post("/api/auth/token/", attempt).status_code,
        client.post(FORMS["admin"], attempt).status_code,
    ]

    assert statuses == [400, 200, 200, 429, 429]


def spoofing(n: int) -> Client:
    return Client(REMOTE_ADDR="203.0.113.12", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")


@pytest.mark.django_db
def test_a_client_cannot_escape_the_limits_by_claiming_another_address(victim, settings):
    settings.MALL_LOGIN_THROTTLE_RATE = "5/minute"
    answers = [spoofing(n).post(FORMS["admin"], {"username": f"user-{n}", "password": "x"}) for n in range(6)]
    assert answers[-1].status_code == 429  # one count: X-Forwarded-For is the client's claim here

    settings.MALL_LOGIN_THROTTLE_RATE = None
    for n in range(LIMIT):
        spoofing(n).post(FORMS["admin"], {"username": victim.username, "password": f"guess-{n}"})
    assert (
        spoofing(99).post(FORMS["admin"], {"username": victim.username, "password": TEST_PASSWORD}).status_code == 429
    )


@pytest.mark.django_db
def test_behind_a_proxy_the_address_it_appended_is_counted(victim, settings):
    settings.MALL_TRUSTED_PROXIES = 1
    settings.MALL_LOGIN_THROTTLE_RATE = "5/minute"

    def via_proxy(claimed: str, real: str) -> Client:
        return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{claimed}, {real}")

    answers = [via_proxy(f"192.0.2.{n}", "203.0.113.13").post("/api/auth/token/", {"username": "x"}) for n in range(6)]
    other = via_proxy("203.0.113.13", "198.51.100.40").post(
        "/api/auth/token/", {"username": victim.username, "password": TEST_PASSWORD}
    )

    assert [answer.status_code for answer in answers] == [400] * 5 + [429]
    assert other.status_code == 200  # another client behind the same proxy has its own count
