"""The checkout throttle counts per user across the worker processes (a shared cache), not per process."""

import re

import pytest
import redis
import requests
from rest_framework.authtoken.models import Token

from harness import processes as server
from tests.support import shop_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REDIS_URL = "redis://127.0.0.1:6379/3"
ALLOWED = 4  # checkouts per user and minute
ACCESS_LINE = re.compile(r"^worker=<(\d+)> (\S+) (\S+) status=(\d+)$", re.MULTILINE)


def served(log_path) -> list[tuple[int, str, str, int]]:
    """The access log so far: (worker pid, method, path, status) per request."""
    text = log_path.read_text(errors="replace")
    return [(int(pid), method, path, int(status)) for pid, method, path, status in ACCESS_LINE.findall(text)]


def pin_sessions_to_both_workers(base_url: str, log_path) -> list[requests.Session]:
    """Two keep-alive sessions, each connected to a different worker (found through the access log)."""
    by_worker: dict[int, requests.Session] = {}
    for _ in range(40):  # new connections until both workers took one
        session = requests.Session()
        seen = len(served(log_path))
        assert session.get(f"{base_url}/api/", timeout=10).status_code == 200
        lines = wait_until(lambda n=seen: served(log_path)[n:], timeout=10, what="the access log line")
        worker = lines[-1][0]
        if worker in by_worker:
            session.close()
        else:
            by_worker[worker] = session
        if len(by_worker) == 2:
            return list(by_worker.values())
    raise AssertionError(f"40 connections all went to worker(s) {sorted(by_worker)}")


def checkouts_served(log_path) -> list[tuple[int, str, str, int]]:
    return [line for line in served(log_path) if line[1:3] == ("POST", "/api/orders/")]


@pytest.mark.parametrize("shared_cache", ["database", "redis"])
def test_n_plus_one_checkouts_over_two_workers_let_exactly_n_through(user, tmp_path, shared_cache):
    token = Token.objects.create(user=user).key
    env = shop_env(CHECKOUT_THROTTLE_RATE=f"{ALLOWED}/minute", GUNICORN_ACCESSLOG="")
    if shared_cache == "redis":
        env["MALL_CACHE_REDIS_URL"] = REDIS_URL
        client = redis.Redis.from_url(REDIS_URL)
        stale = client.keys(f"*throttle_checkout_{user.pk}")  # user ids repeat across test runs
        if stale:
            client.delete(*stale)
    log_path = tmp_path / "gunicorn.log"
    options = (
        "--access-logfile", "-",
        "--access-logformat", "worker=%(p)s %(m)s %(U)s status=%(s)s",
        "--keep-alive", "30",  # the pinned sessions keep their worker for the whole test
    )  # fmt: skip
    with server.gunicorn(env=env, workers=2, threads=1, log_path=log_path, options=options) as (base_url, _):
        sessions = pin_sessions_to_both_workers(base_url, log_path)
        statuses = []
        for attempt in range(ALLOWED + 1):  # alternately on each worker
            response = sessions[attempt % 2].post(
                f"{base_url}/api/orders/", json={}, headers={"Authorization": f"Token {token}"}, timeout=10
            )
            statuses.append(response.status_code)
        checkouts = wait_until(
            lambda: len(checkouts_served(log_path)) > ALLOWED and checkouts_served(log_path),
            timeout=10,
            what="the checkouts' access log lines",
        )

    # Past the throttle, an empty cart answers 400; the one checkout over the allowance answers 429.
    # Per process, each worker would have let its 2 or 3 of these through: all five.
    assert statuses == [400] * ALLOWED + [429], statuses
    assert response.json()["code"] == "throttled"
    assert len({worker for worker, *_ in checkouts}) == 2  # both workers served checkouts
