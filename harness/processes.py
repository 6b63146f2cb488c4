"""Start the shop under gunicorn (and a django-q2 cluster) as subprocesses, and read their workers' memory.

The tests (tests/support.py, on the test database) and the perf lab (perf/bench) both start their shops here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]  # the repository: every process runs in it


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, *, timeout: float = 30) -> None:
    """SIGTERM to the parent only (gunicorn and qcluster stop their children themselves), then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def running(args: list[str], *, env: dict[str, str], log_path: Path):
    """Run a process (in the repository, its output to ``log_path``) for the duration of the block.

    Its own session: a test may kill its whole process tree (``os.killpg``) without hitting its caller.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            _stop(process)


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file ("" when there is none)."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@contextmanager
def gunicorn(
    *, env: dict[str, str], workers: int, threads: int, log_path: Path, start_timeout: float = 90,
    options: tuple[str, ...] = (),
):  # fmt: skip
    """The shop on a free port (``gunicorn.conf.py`` of the repo applies, then ``options``); yields (base URL,
    master process) once it answers and its workers are up."""
    port = free_port()
    args = [
        sys.executable, "-m", "gunicorn", "mall.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads), *options,
    ]  # fmt: skip
    with running(args, env=env, log_path=log_path) as process:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{tail(log_path)}")
            try:
                if requests.get(f"{base_url}/api/goods/", timeout=10).status_code < 500:
                    break
            except requests.RequestException:
                pass  # not listening yet, or a worker still importing the app
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer in {start_timeout}s:\n{tail(log_path)}")
            time.sleep(0.2)
        _wait_for_workers(process.pid, workers, deadline)
        yield base_url, process


def _wait_for_workers(master: int, workers: int, deadline: float) -> None:
    while len(children(master)) < workers and time.monotonic() < deadline:
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (gunicorn's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the ppid is the 2nd field after it.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def memory_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


@contextmanager
def qcluster(*, env: dict[str, str], log_path: Path):
    """``manage.py qcluster`` (stopped with SIGTERM to its parent process only)."""
    with running([sys.executable, "manage.py", "qcluster"], env=env, log_path=log_path) as process:
        yield process
