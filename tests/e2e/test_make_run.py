"""``make run`` / ``scripts/run``: a busy port is refused up front; SIGTERM and SIGINT always stop gracefully.

The script runs for real (migrate, seed, gunicorn, qcluster) on its own SQLite file, exporting spans
to an in-process OTLP receiver, so a graceful stop shows as the last spans arriving.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.otlp_receiver import running_otlp_receiver
from tests.support import REPO, free_port, wait_until

pytestmark = pytest.mark.slow

STOP_WAIT = 45  # the script gives its children 30 s before it would kill them


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    """One SQLite file for every run here: migrated and seeded by the first run only."""
    return f"sqlite:///{tmp_path_factory.mktemp('make-run') / 'shop.sqlite3'}"


def run_env(*, database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DJANGO_", "GUNICORN_"))}
    env.update(
        DATABASE_URL=database_url,
        HOST="127.0.0.1",
        PORT=str(port),
        GUNICORN_WORKERS="1",
        DJANGO_Q_WORKERS="1",
        OTEL_METRICS_EXPORTER="none",
        MALL_GRPC_BIND=f"127.0.0.1:{free_port()}",  # not the default 9500: another shop may run there
        **extra,
    )
    return env


def start(args: list[str], env: dict[str, str], log_path, *, cwd=REPO) -> subprocess.Popen:
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        # Its own session and process group, as a terminal gives `make run`.
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def answers(process: subprocess.Popen, url: str, log_path):
    if process.poll() is not None:
        raise AssertionError(f"exited with {process.returncode}: {log_path.read_text()[-3000:]}")
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def stop_and_wait(process: subprocess.Popen, sig: int, *, group: bool, repeat_for: float = 0.0) -> int:
    """Signal (the group or the script alone), again and again for ``repeat_for`` seconds; wait for the end."""
    send = (lambda: os.killpg(process.pid, sig)) if group else (lambda: process.send_signal(sig))
    send()
    until = time.monotonic() + repeat_for
    while time.monotonic() < until and process.poll() is None:
        send()
    try:
        return process.wait(timeout=STOP_WAIT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_a_busy_port_is_refused_before_anything_starts(database_url, tmp_path):
    with socket.socket() as other_shop:
        other_shop.bind(("127.0.0.1", 0))
        other_shop.listen()
        port = other_shop.getsockname()[1]
        result = subprocess.run(
            ["scripts/run"],
            cwd=REPO,
            env=run_env(database_url=database_url, port=port),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "PORT=8001 MALL_GRPC_BIND=127.0.0.1:9501 make run" in result.stderr
    output = result.stdout + result.stderr
    assert "==>" not in output  # nothing installed, migrated or started
    assert "qcluster" not in output and "The shop is running" not in output


def run_then_stop(args: list[str], *, database_url, log_path, sig: int, group: bool, cwd=REPO, repeat_for=0.0):
    """Run the shop with ``args`` until it is up and has served a request, then stop it with ``sig``.

    Returns the exit status, the whole output and the spans that reached the OTLP receiver.
    """
    port = free_port()
    with running_otlp_receiver() as otlp:
        env = run_env(database_url=database_url, port=port, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.grpc_endpoint)
        process = start(args, env, log_path, cwd=cwd)
        url = f"http://127.0.0.1:{port}/api/goods/"
        wait_until(lambda: answers(process, url, log_path), timeout=120, interval=0.3, what=f"{args} to answer")
        wait_until(lambda: "The shop is running" in log_path.read_text(), timeout=30, what="the banner")
        assert requests.get(url, timeout=5).status_code == 200
        # Sent at once: the batch processor's 5 s schedule has not exported this request's spans yet.
        status = stop_and_wait(process, sig, group=group, repeat_for=repeat_for)
        return status, log_path.read_text(), otlp.spans_named("GET api/goods/")


def kill_what_runs_in(directory) -> None:
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")).is_relative_to(directory):
                os.killpg(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass  # gone meanwhile, or not a group leader: its leader is found too


def assert_stopped_gracefully(log: str, request_spans: list) -> None:
    assert "==> Stopping the web server, the gRPC server and the task worker" in log, log[-3000:]
    assert "==> Stopped" in log, log[-3000:]
    assert "gRPC order service stopped" in log  # grpcserver's graceful end
    assert "Killed" not in log and "killing them" not in log
    assert "Shutting down: Master" in log  # gunicorn's graceful end
    assert "has stopped." in log  # qcluster's graceful end
    assert "Traceback" not in log, log[-3000:]
    # The server flushed its spans on the way out (spans of the probe and of the request above).
    assert len(request_spans) >= 2


@pytest.mark.parametrize(
    ("how", "sig", "group", "repeat_for"),
    [
        # make forwards its TERM, so the script gets two, the second maybe while its stop is starting.
        ("make run", signal.SIGTERM, True, 0),
        ("make run", signal.SIGTERM, True, 0),
        ("make run", signal.SIGINT, True, 0),  # Ctrl-C in a terminal
        ("scripts/run", signal.SIGTERM, True, 0),
        ("scripts/run", signal.SIGTERM, False, 0),
        ("scripts/run", signal.SIGINT, False, 0),
        ("scripts/run", signal.SIGTERM, False, 0.5),  # an impatient operator: still one graceful stop
    ],
)
def test_a_stop_signal_stops_web_and_worker_gracefully_and_flushes_spans(
    database_url, tmp_path, how, sig, group, repeat_for
):
    status, log, request_spans = run_then_stop(
        how.split(),
        database_url=database_url,
        log_path=tmp_path / "run.log",
        sig=sig,
        group=group,
        repeat_for=repeat_for,
    )

    assert status == (0 if how == "scripts/run" else -sig), log[-3000:]
    # The banner names the whole command; the worker starts once the web server answers.
    assert "==> Starting the web server: .venv/bin/python -m gunicorn -c gunicorn.conf.py" in log
    assert log.index("Listening at:") < log.index("==> Starting the task worker") < log.index("The shop is running")
    assert "==> Starting the gRPC order service: .venv/bin/python manage.py grpcserver" in log
    assert "    gRPC              127.0.0.1:" in log
    # the rules in force (none here)
    assert '    Faults            none in force (README "Diagnose": .venv/bin/python manage.py faults)' in log
    assert "Error 130" not in log and "Error 143" not in log  # make saw a clean exit
    # Spans go to an OTLP endpoint here, so the built-in store is off: the banner names the exporter.
    assert "    Jaeger            http://localhost:16686 (spans exported to http://127.0.0.1:" in log
    assert "/admin/traces/" not in log
    assert_stopped_gracefully(log, request_spans)


def test_a_second_signal_while_the_stop_is_starting_is_the_same_stop(database_url, tmp_path):
    """make's forwarded TERM can land just after the first one's handler has begun (seen once in CI).

    A copy of the script sends itself that second TERM at the worst moment, which no outside timing
    can hit reliably. Bash runs the handler again there; the script must still stop both processes
    gracefully, not exit at once and leave them running.
    """
    script = (REPO / "scripts" / "run").read_text()
    marked = "    stopping=yes\n"
    assert script.count(marked) == 1, "the stop's start moved: update this test"
    checkout = tmp_path / "checkout"  # the script runs from its own directory's parent
    (checkout / "scripts").mkdir(parents=True)
    for entry in REPO.iterdir():
        if entry.name != "scripts":
            (checkout / entry.name).symlink_to(entry)
    for entry in (REPO / "scripts").iterdir():  # the scripts it calls (scripts/banner)
        if entry.name != "run":
            (checkout / "scripts" / entry.name).symlink_to(entry)
    copy = checkout / "scripts" / "run"
    copy.write_text(script.replace(marked, marked + "    kill -TERM $$\n"))
    copy.chmod(0o755)

    try:
        status, log, request_spans = run_then_stop(
            [str(copy)],
            database_url=database_url,
            log_path=tmp_path / "run.log",
            sig=signal.SIGTERM,
            group=False,
            cwd=checkout,
        )
    finally:
        kill_what_runs_in(checkout)  # what the old script left running, were it to exit early

    assert status == 0, log[-3000:]
    assert_stopped_gracefully(log, request_spans)
