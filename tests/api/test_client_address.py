"""Behind a proxy only when told: the log-in lock (django-axes) and the throttles take the client's address from
X-Forwarded-For only with MALL_TRUSTED_PROXIES set, and then the address the proxy wrote, never the client's own."""

import subprocess

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.factories import TEST_PASSWORD, UserFactory
from tests.support import settings_printed

LIMIT = 10  # the default MALL_LOGIN_FAILURE_LIMIT
TOKEN = "/api/auth/token/"
PROXY = "10.0.0.2"  # the proxy's own address: every request behind it comes from there


def log_in(username: str, password: str, *, remote: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    return Client(REMOTE_ADDR=remote, **extra).post(TOKEN, {"username": username, "password": password})


@pytest.fixture
def victim(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def behind_one_proxy(settings):
    settings.MALL_TRUSTED_PROXIES = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def test_behind_the_proxy_the_forwarded_address_is_the_one_locked(victim, behind_one_proxy):
    # The guesser's own X-Forwarded-For comes first; the proxy appends the address it saw.
    for n in range(LIMIT):
        log_in(victim.username, f"guess-{n}", remote=PROXY, forwarded=f"198.51.100.{n}, 203.0.113.7")

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    assert log_in(victim.username, TEST_PASSWORD, remote=PROXY, forwarded="203.0.113.7").status_code == 429
    # Another client behind the same proxy is not locked out.
    assert log_in(victim.username, TEST_PASSWORD, remote=PROXY, forwarded="198.51.100.20").status_code == 200


def test_without_the_setting_the_header_is_ignored_and_cannot_pass_for_another_client(victim):
    for n in range(LIMIT):
        log_in(victim.username, f"guess-{n}", remote="203.0.113.7", forwarded="198.51.100.20")

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    # The guesser stays locked whatever it writes; the client it named logs in.
    assert log_in(victim.username, TEST_PASSWORD, remote="203.0.113.7", forwarded="192.0.2.1").status_code == 429
    assert log_in(victim.username, TEST_PASSWORD, remote="198.51.100.20").status_code == 200


@pytest.mark.parametrize("trusted", [False, True])
def test_the_token_throttle_counts_the_same_address(victim, settings, request, trusted):
    settings.MALL_LOGIN_THROTTLE_RATE = "3/minute"
    if trusted:
        request.getfixturevalue("behind_one_proxy")
    remote, client = (PROXY, "203.0.113.9") if trusted else ("203.0.113.9", None)

    def attempt(forged: str, *, who: str | None = client, peer: str = remote) -> int:
        forwarded = f"{forged}, {who}" if who else forged
        return log_in(f"user-{forged}", "x", remote=peer, forwarded=forwarded).status_code

    # A guesser writing another X-Forwarded-For each time is one client all the same.
    assert [attempt(f"198.51.100.{n}") for n in range(4)] == [400, 400, 400, 429]
    if trusted:  # another client behind the proxy has its own count
        assert attempt("192.0.2.1", who="198.51.100.30") == 400
    else:
        assert attempt("203.0.113.9", peer="198.51.100.30") == 400  # naming the throttled one changes nothing


def proxy_settings(**env) -> subprocess.CompletedProcess:
    code = (
        "from django.conf import settings as s; from rest_framework.settings import api_settings as a; "
        "print(s.MALL_TRUSTED_PROXIES, a.NUM_PROXIES, s.AXES_CLIENT_IP_CALLABLE)"
    )
    return settings_printed(code, **env)


def test_the_proxy_count_is_a_setting_from_the_environment(db):
    default, behind, invalid = (
        proxy_settings(),
        proxy_settings(MALL_TRUSTED_PROXIES="1"),
        proxy_settings(MALL_TRUSTED_PROXIES="yes"),
    )

    assert default.stdout.split()[-3:] == ["0", "0", "mall.edge.client_address"], default.stderr
    assert behind.stdout.split()[-3:] == ["1", "1", "mall.edge.client_address"], behind.stderr
    assert invalid.returncode != 0 and "MALL_TRUSTED_PROXIES" in invalid.stderr
