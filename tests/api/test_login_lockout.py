"""Login guessing protection: a username is locked for the failing address after consecutive failures, on every
log-in, for a cool-off; each failure the limit allows answers "wrong password"; another address is not locked."""

import subprocess
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from tests.factories import TEST_PASSWORD, UserFactory
from tests.support import settings_printed

LIMIT = 10  # the default MALL_LOGIN_FAILURE_LIMIT

# (log-in URL, what a successful log-in answers)
LOGINS = {
    "token": ("/api/auth/token/", 200),
    "browsable API": ("/api/auth/login/", 302),
    "admin": ("/admin/login/?next=/admin/", 302),
}


def log_in(url: str, username: str, password: str):
    return Client().post(url, {"username": username, "password": password})


@pytest.fixture
def victim(db):
    return UserFactory(is_staff=True)


@pytest.mark.parametrize("login", LOGINS)
def test_a_username_is_locked_after_the_failure_limit_the_right_password_included(victim, login):
    url, success = LOGINS[login]
    bystander = UserFactory(is_staff=True)

    failures = [log_in(url, victim.username, f"guess-{n}").status_code for n in range(LIMIT)]
    locked = log_in(url, victim.username, TEST_PASSWORD)

    assert 429 not in failures  # each failure the limit allows answers "wrong password"
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    if login == "token":
        assert locked.json()["code"] == "login_locked"
        assert "locked" in locked.json()["detail"]
    else:  # a form: a page in its own look (tests/api/test_login_refused_pages.py)
        assert locked["Content-Type"].startswith("text/html")
        assert b"locked" in locked.content
    assert log_in(url, bystander.username, TEST_PASSWORD).status_code == success  # other users unaffected


@pytest.mark.parametrize("login", LOGINS)
def test_the_lock_ends_after_the_cool_off(victim, login, settings):
    url, success = LOGINS[login]
    for n in range(LIMIT):
        log_in(url, victim.username, f"guess-{n}")
    assert log_in(url, victim.username, TEST_PASSWORD).status_code == 429

    cool_off = timedelta(seconds=settings.MALL_LOGIN_COOLOFF_SECONDS)
    AccessAttempt.objects.update(attempt_time=timezone.now() - cool_off - timedelta(seconds=1))

    assert log_in(url, victim.username, TEST_PASSWORD).status_code == success


def test_failures_count_across_the_log_in_pages_and_a_success_starts_again(victim):
    urls = [url for url, _ in LOGINS.values()]
    for n in range(LIMIT - 1):
        log_in(urls[n % 3], victim.username, f"guess-{n}")
    assert log_in("/api/auth/token/", victim.username, TEST_PASSWORD).status_code == 200

    for n in range(LIMIT - 1):
        assert log_in(urls[n % 3], victim.username, f"again-{n}").status_code != 429
    assert log_in("/api/auth/token/", victim.username, TEST_PASSWORD).status_code == 200
    assert log_in("/api/auth/token/", victim.username, "one-more").status_code == 400


def shell_settings(**env) -> subprocess.CompletedProcess:
    code = (
        "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()))"
    )
    return settings_printed(code, **env)


def test_the_limits_are_settings_from_the_environment(db):
    configured = shell_settings(MALL_LOGIN_FAILURE_LIMIT="5", MALL_LOGIN_COOLOFF_SECONDS="60")
    invalid = shell_settings(MALL_LOGIN_FAILURE_LIMIT="ten")

    assert configured.stdout.split()[-2:] == ["5", "60"], configured.stderr
    assert invalid.returncode != 0


@pytest.mark.parametrize("value", ["ten", "0", "-3", "1.5"])
def test_an_invalid_limit_is_refused_naming_the_variable(monkeypatch, value):
    from django.core.exceptions import ImproperlyConfigured

    from mall.env import env_int

    monkeypatch.setenv("MALL_LOGIN_COOLOFF_SECONDS", value)

    with pytest.raises(ImproperlyConfigured, match="MALL_LOGIN_COOLOFF_SECONDS"):
        env_int("MALL_LOGIN_COOLOFF_SECONDS", 900, minimum=1)


def test_a_lower_limit_locks_sooner(victim, settings):
    settings.AXES_FAILURE_LIMIT = 3

    answers = [log_in("/api/auth/token/", victim.username, f"guess-{n}").status_code for n in range(4)]

    assert answers == [400, 400, 400, 429]  # three "wrong password" answers, then the lock


def log_in_from(address: str, url: str, username: str, password: str):
    return Client(REMOTE_ADDR=address).post(url, {"username": username, "password": password})


@pytest.mark.parametrize("login", LOGINS)
def test_a_guesser_cannot_lock_the_account_for_another_address(victim, login):
    url, success = LOGINS[login]
    for n in range(LIMIT + 5):
        log_in_from("203.0.113.7", url, victim.username, f"guess-{n}")
    assert log_in_from("203.0.113.7", url, victim.username, TEST_PASSWORD).status_code == 429  # still refused
    assert log_in_from("198.51.100.20", url, victim.username, TEST_PASSWORD).status_code == success


def test_the_token_endpoint_throttles_one_address_whatever_usernames_it_tries(victim, settings):
    settings.MALL_LOGIN_THROTTLE_RATE = "5/minute"
    guesser, other = Client(REMOTE_ADDR="203.0.113.9"), Client(REMOTE_ADDR="198.51.100.30")
    answers = [guesser.post("/api/auth/token/", {"username": f"user-{n}", "password": "x"}) for n in range(6)]

    assert [answer.status_code for answer in answers] == [400] * 5 + [429]
    assert answers[-1].json()["code"] == "throttled"
    assert int(answers[-1]["Retry-After"]) > 0
    token = other.post("/api/auth/token/", {"username": victim.username, "password": TEST_PASSWORD})
    assert token.status_code == 200  # another address has its own count
