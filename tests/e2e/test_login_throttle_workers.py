"""The log-in forms' per-address rate counts across the worker processes (the shared "throttle" cache)."""

import pytest

from harness import processes as server
from tests.e2e.test_throttle_workers import pin_sessions_to_both_workers, served
from tests.support import shop_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ALLOWED = 4  # log-in attempts per address and minute


def test_n_plus_one_admin_log_in_attempts_over_two_workers_let_exactly_n_through(tmp_path):
    env = shop_env(MALL_LOGIN_THROTTLE_RATE=f"{ALLOWED}/minute", GUNICORN_ACCESSLOG="")
    log_path = tmp_path / "gunicorn.log"
    options = (
        "--access-logfile", "-",
        "--access-logformat", "worker=%(p)s %(m)s %(U)s status=%(s)s",
        "--keep-alive", "30",  # the pinned sessions keep their worker for the whole test
    )  # fmt: skip
    with server.gunicorn(env=env, workers=2, threads=1, log_path=log_path, options=options) as (base_url, _):
        sessions = pin_sessions_to_both_workers(base_url, log_path)
        statuses = [
            sessions[attempt % 2]
            .post(f"{base_url}/admin/login/", data={"username": f"user-{attempt}", "password": "x"}, timeout=30)
            .status_code
            for attempt in range(ALLOWED + 1)
        ]
        attempts = wait_until(
            lambda: (
                [line for line in served(log_path) if line[1:3] == ("POST", "/admin/login/")][ALLOWED:]
                and served(log_path)
            ),
            timeout=10,
            what="the attempts' access log lines",
        )

    # Counted before the form's CSRF check: the first attempts answer 403 (no CSRF token), the one over 429.
    # Per process, each worker would have let its 2 or 3 through: all five.
    assert statuses == [403] * ALLOWED + [429], statuses
    assert len({worker for worker, method, path, _ in attempts if path == "/admin/login/"}) == 2
