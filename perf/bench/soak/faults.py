"""What the fault soak breaks on purpose: the collector (refuse, hang), its own Redis, the database's
connections, and the shop's processes (each in its own process group, restarted when they die)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from harness.processes import REPO, free_port
from perf.bench.common.environment import database_name, mysql_server_connection


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(target)


class CollectorProxy:
    """A TCP front of an OTLP receiver on a port of its own.

    ``up`` forwards, ``refuse`` closes the port (connection refused), ``hang`` accepts connections and
    never answers. Changing the mode drops the open connections, so the exporters meet the new mode.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.mode = "up"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CollectorProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="collector-proxy", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: refuse mode, or stopped
            with self._lock:
                self._open.append(client)
                if self.mode == "hang":
                    continue  # held open, never read
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    _close(client)
                    continue
                self._open.append(upstream)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()

    def set_mode(self, mode: str) -> None:
        assert mode in {"up", "refuse", "hang"}
        with self._lock:
            self.mode = mode
            for sock in self._open:
                _close(sock)
            self._open.clear()
            if mode == "refuse" and self._listener is not None:
                _close(self._listener)
                self._listener = None
        if mode != "refuse" and self._listener is None:
            self._listen()

    def stop(self) -> None:
        self.set_mode("refuse")


class RedisServer:
    """A redis-server of the soak's own on a free port (never the machine's shared one), no persistence."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def kill_database_connections(database_url: str) -> int:
    """``KILL`` every connection to the soak's database from another session; how many were killed."""
    import MySQLdb

    admin = mysql_server_connection(database_url)
    killed = 0
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                [database_name(database_url)],
            )
            for (connection_id,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL {int(connection_id)}")
                    killed += 1
                except MySQLdb.OperationalError:
                    pass  # ended meanwhile
    finally:
        admin.close()
    return killed


class Supervised:
    """A shop process in its own process group, restarted when it dies (as a supervisor would)."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.unplanned_exits = 0
        self.stopped = False  # by stop(): never restarted again
        self.held = False  # killed on purpose: down until start()
        self._planned = False

    def start(self) -> Supervised:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._planned = self.held = False
        return self

    def kill_group(self) -> None:
        """SIGKILL the process and all its children (a host or container dying); down until start()."""
        self._planned = self.held = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def restart_if_dead(self) -> bool:
        if self.stopped or self.held or self.process.poll() is None:
            return False
        if not self._planned:
            self.unplanned_exits += 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # orphaned children of a dead parent
        self.start()
        return True

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the parent alone (see the known pitfalls), then SIGKILL to the group."""
        self.stopped = self._planned = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
