"""Test support: bounded waits and real shop processes (gunicorn, qcluster) on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import requests
from django.db import connection

REPO = Path(__file__).resolve().parent.parent


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@contextmanager
def running(args: list[str], *, env: dict[str, str], name: str, log_dir: Path):
    """Run a process for the duration of the block; SIGTERM (then SIGKILL) on exit; log to a file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        # Its own session: a test may kill the whole process tree (os.killpg) without hitting pytest.
        process = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def read_log(log_dir: Path, name: str) -> str:
    path = log_dir / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def shop_server(*, env: dict[str, str], log_dir: Path, workers: int = 1):
    """A gunicorn server of the shop on a free port; yields its base URL once it answers."""
    port = free_port()
    args = [
        sys.executable, "-m", "gunicorn", "mall.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", "4",
        "--graceful-timeout", "10",
    ]  # fmt: skip
    with running(args, env=env, name="gunicorn", log_dir=log_dir) as process:
        base_url = f"http://127.0.0.1:{port}"

        def answers():
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited: {read_log(log_dir, 'gunicorn')[-2000:]}")
            try:
                return requests.get(f"{base_url}/api/goods/", timeout=2).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # listening, worker still booting
                return False

        wait_until(answers, timeout=60, what="gunicorn to answer")
        yield base_url


@contextmanager
def qcluster(*, env: dict[str, str], log_dir: Path):
    """A real django-q2 cluster (``manage.py qcluster``); stopped with SIGTERM to the parent only."""
    with running([sys.executable, "manage.py", "qcluster"], env=env, name="qcluster", log_dir=log_dir) as process:
        yield process


def run_concurrently(task: Callable, arguments: list, *, threads: int | None = None) -> list:
    """Run ``task(argument)`` for every argument in real threads released together; results in order.

    Each thread uses its own database connection and closes it, as a request thread would.
    """
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    threads = threads or len(arguments)
    # The first wave starts together; later arguments start as soon as a thread is free.
    first_wave = min(threads, len(arguments))
    arrived = [0]
    arrivals = threading.Lock()
    all_ready = threading.Event()

    def run(argument):
        try:
            with arrivals:
                arrived[0] += 1
                if arrived[0] >= first_wave:
                    all_ready.set()
            all_ready.wait(timeout=30)
            return task(argument)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, arguments))


class _RollBack(Exception):
    """Ends a ``rolled_back`` block's savepoint."""


@contextmanager
def rolled_back():
    """Run the block in a savepoint rolled back at its end (a Hypothesis example leaves no data behind)."""
    from django.db import transaction

    try:
        with transaction.atomic():
            yield
            raise _RollBack
    except _RollBack:
        pass
