"""Test support: bounded waits and real shop processes (gunicorn, qcluster) on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from harness import processes
from harness.processes import (
    REPO,
    free_port,  # noqa: F401 - the tests import it from here
)
from harness.threads import run_together


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(interval)


def test_database_url() -> str:
    """DATABASE_URL of the database the tests run on, for processes started by a test."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"mysql://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 3306}/{s['NAME']}"


def shop_env(**overrides: str) -> dict[str, str]:
    """Environment of a shop process on the test database, plain HTTP, no telemetry export by default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        DATABASE_URL=test_database_url(),
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_SETTINGS_MODULE="mall.settings",
        CHECKOUT_THROTTLE_RATE="off",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def settings_printed(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in ``manage.py shell`` with the shop's environment plus ``env`` (settings read at start)."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=REPO,
        env=shop_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def log_path(log_dir: Path, name: str) -> Path:
    return log_dir / f"{name}.log"


def read_log(log_dir: Path, name: str) -> str:
    path = log_path(log_dir, name)
    return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running(args: list[str], *, env: dict[str, str], name: str, log_dir: Path):
    """Run a process for the duration of the block (SIGTERM, then SIGKILL at its end), logging to ``<name>.log``."""
    with processes.running(args, env=env, log_path=log_path(log_dir, name)) as process:
        yield process


@contextmanager
def shop_server(*, env: dict[str, str], log_dir: Path, workers: int = 1):
    """A gunicorn server of the shop on a free port; yields its base URL once it answers."""
    with processes.gunicorn(
        env=env,
        workers=workers,
        threads=4,
        log_path=log_path(log_dir, "gunicorn"),
        options=("--graceful-timeout", "10"),
    ) as (base_url, _):
        yield base_url


@contextmanager
def qcluster(*, env: dict[str, str], log_dir: Path):
    """A real django-q2 cluster (``manage.py qcluster``); stopped with SIGTERM to the parent only."""
    with processes.qcluster(env=env, log_path=log_path(log_dir, "qcluster")) as process:
        yield process


def run_concurrently(task: Callable, arguments: list, *, threads: int | None = None) -> list:
    """Run ``task(argument)`` for every argument in real threads released together; results in order.

    ``threads`` threads (one per argument by default) start together; each takes the next argument when
    it is done with one. Each task uses its own database connection and closes it, as a request thread
    would. The first exception of a task is raised here once all are done.
    """
    from django.db import connections

    results: list = [None] * len(arguments)
    errors: list[BaseException] = []

    def work(_thread: int, ready, jobs) -> None:
        ready()
        for index, argument in jobs:
            try:
                results[index] = task(argument)
            except BaseException as exc:  # raised again in the caller's thread
                errors.append(exc)
            finally:
                connections.close_all()

    run_together(range(min(threads or len(arguments), len(arguments))), enumerate(arguments), work)
    if errors:
        raise errors[0]
    return results


def alongside(main: Callable[[], object], helper: Callable[[], object]) -> object:
    """``main()`` while ``helper()`` runs in another thread, both released together; main's result."""
    return run_concurrently(lambda role: main() if role == "main" else helper(), ["main", "helper"])[0]


@contextmanager
def mariadb_sessions(count: int):
    """``count`` MySQLdb connections of their own to the test database (other sessions, outside Django);
    each rolled back and closed at the end of the block."""
    import MySQLdb

    s = connection.settings_dict
    address = {"host": s["HOST"] or "127.0.0.1", "port": int(s["PORT"] or 3306), "db": s["NAME"]}
    sessions = [MySQLdb.connect(user=s["USER"], passwd=s["PASSWORD"], **address) for _ in range(count)]
    try:
        yield sessions
    finally:
        for session in sessions:
            session.rollback()
            session.close()


def session_running(watcher, statement: str, *, what: str) -> int:
    """Wait until another session runs a statement ``LIKE statement`` (seen from ``watcher``, a raw connection);
    its connection id."""

    def running_session_id():
        cursor = watcher.cursor()
        cursor.execute(
            "SELECT id FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()", [statement]
        )
        row = cursor.fetchone()
        return row[0] if row else None

    return wait_until(running_session_id, timeout=20, what=what)


class _RollBack(Exception):
    """Ends a ``rolled_back`` block's savepoint."""


@contextmanager
def rolled_back():
    """Run the block in a savepoint rolled back at its end (a Hypothesis example leaves no data behind).

    The savepoint is marked as Django's TestCase marks its own, so a service that must be the outermost
    transaction (``atomic(durable=True)``) runs inside it as it runs in production.
    """
    from django.db import transaction

    block = transaction.atomic()
    block._from_testcase = True  # as django.test.TestCase._enter_atomics: a durable block may nest in it
    try:
        with block:
            yield
            raise _RollBack
    except _RollBack:
        pass
