"""A slow client cannot starve the shop: the shipped nginx configuration (deploy/nginx/mall.conf) in front of a
real gunicorn with the shipped 2 workers × 1 thread keeps answering while 50 clients trickle request bodies; and
without the proxy a trickling client on a refused request is cut off at the edge's deadline."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

import pytest
import requests

from harness import processes
from harness.nginx import nginx
from mall.edge import DRAIN_DEADLINE
from tests.support import log_path, shop_env, wait_until

pytestmark = pytest.mark.slow

TRICKLERS = 50
SOURCES = [f"127.0.0.{n}" for n in range(2, 7)]  # 10 clients per address, under the per-address limit
PROBES = 8
PROBE_BOUND = 1.0  # seconds: what the issue asks of a normal request during the attack


class Trickler(threading.Thread):
    """A client that sends a request's headers, then its body one byte at a time every ``interval`` seconds."""

    def __init__(self, port: int, *, source: str, length: int, interval: float, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.source, self.length, self.interval, self.stop = port, source, length, interval, stop
        self.sock: socket.socket | None = None
        self.trickling = threading.Event()  # set once a body byte is out: the server holds the request
        self.error: BaseException | None = None

    def run(self):
        try:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30, source_address=(self.source, 0))
            self.sock.sendall(request_head("POST", "/api/orders/", self.port, self.length))
            for sent in range(1, self.length + 1):
                self.sock.sendall(b"x")
                if sent == 1:
                    self.trickling.set()
                if self.stop.wait(self.interval):
                    return
        except OSError as exc:
            self.error = exc
            self.trickling.set()

    def still_connected(self) -> bool:
        """True while the server has neither answered nor closed the connection (nothing to read on it)."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return not readable


def request_head(method: str, path: str, port: int, length: int) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def timed_get(url: str) -> tuple[float, int]:
    started = time.monotonic()
    status = requests.get(url, timeout=30).status_code
    return time.monotonic() - started, status


@pytest.fixture
def shipped_shop(transactional_db, tmp_path):
    """The shop under gunicorn as shipped (gunicorn.conf.py: 2 workers × 1 thread), behind the shipped nginx."""
    env = shop_env(MALL_TRUSTED_PROXIES="1", MALL_LOGIN_THROTTLE_RATE="3/minute")
    with processes.gunicorn(env=env, workers=2, threads=1, log_path=log_path(tmp_path, "gunicorn")) as (url, _):
        yield from _behind_nginx(url, tmp_path)


def _behind_nginx(url: str, tmp_path):
    with nginx(upstream=url.removeprefix("http://"), prefix=tmp_path / "nginx") as port:
        yield port


def test_fifty_trickling_clients_do_not_delay_a_normal_request_behind_the_proxy(shipped_shop):
    port = shipped_shop
    stop = threading.Event()
    tricklers = [
        # A body within the proxy's limit, so the proxy must hold it (a larger one is refused at once, 413).
        Trickler(port, source=SOURCES[n % len(SOURCES)], length=60_000, interval=1.0 + (n % 5) * 0.2, stop=stop)
        for n in range(TRICKLERS)
    ]
    try:
        for trickler in tricklers:
            trickler.start()
        wait_until(lambda: all(t.trickling.is_set() for t in tricklers), timeout=30, what="all tricklers sending")
        assert [t.error for t in tricklers if t.error] == []

        probes = []
        for _ in range(PROBES):
            probes.append(timed_get(f"http://127.0.0.1:{port}/api/goods/"))
            stop.wait(0.3)  # spread the probes over the attack (pacing, not synchronisation)

        assert [status for _, status in probes] == [200] * PROBES
        assert max(seconds for seconds, _ in probes) < PROBE_BOUND, probes
        # The attack was on all along: the proxy still holds every trickling request, unanswered.
        assert sum(t.still_connected() for t in tricklers) == TRICKLERS
    finally:
        stop.set()
        for trickler in tricklers:
            trickler.join(timeout=10)
            if trickler.sock is not None:
                trickler.sock.close()


def test_the_proxy_passes_the_client_address_and_ignores_a_forged_one(shipped_shop):
    """Behind nginx with MALL_TRUSTED_PROXIES=1 the shop counts the address nginx saw: a client writing
    another X-Forwarded-For each time is still throttled, another address is not."""
    url = f"http://127.0.0.1:{shipped_shop}/api/auth/token/"

    def attempt(source: str, forged: str) -> int:
        with requests.Session() as session:
            session.mount("http://", SourceAdapter(source))
            form = {"username": "nobody", "password": "x"}
            return session.post(url, data=form, headers={"X-Forwarded-For": forged}, timeout=30).status_code

    answers = [attempt("127.0.0.2", f"198.51.100.{n}") for n in range(4)]
    assert answers == [400, 400, 400, 429]  # MALL_LOGIN_THROTTLE_RATE=3/minute, per client address
    assert attempt("127.0.0.3", "127.0.0.2") == 400  # another client, even naming the throttled one


class SourceAdapter(requests.adapters.HTTPAdapter):
    """Connect from a given loopback address (Linux routes all of 127.0.0.0/8 to lo)."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def test_the_proxy_limits_requests_in_progress_per_client_address(tmp_path):
    """From one address at most 32 requests wait at once; the rest are answered 429 ``throttled`` at once."""
    stop = threading.Event()
    with nginx(upstream=f"127.0.0.1:{processes.free_port()}", prefix=tmp_path / "nginx") as port:
        tricklers = [Trickler(port, source="127.0.0.9", length=1000, interval=1.0, stop=stop) for _ in range(40)]
        try:
            for trickler in tricklers:
                trickler.start()
            wait_until(lambda: all(t.trickling.is_set() for t in tricklers), timeout=30, what="all tricklers sending")
            wait_until(lambda: sum(not t.still_connected() for t in tricklers) >= 8, timeout=10, what="the 429 answers")
            refused = [t for t in tricklers if not t.still_connected()]
            assert len(refused) == 8
            answer = refused[0].sock.recv(65536).decode()
            assert answer.startswith("HTTP/1.1 429") and "Retry-After: 1" in answer and '"throttled"' in answer
        finally:
            stop.set()
            for trickler in tricklers:
                trickler.join(timeout=10)
                if trickler.sock is not None:
                    trickler.sock.close()


def test_the_proxy_refuses_a_body_over_the_shops_limit_before_reading_it(tmp_path):
    with nginx(upstream=f"127.0.0.1:{processes.free_port()}", prefix=tmp_path / "nginx") as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        with sock:
            sock.sendall(request_head("POST", "/api/orders/", port, 1_000_000))  # and no body at all
            answer = read_until_closed(sock, deadline=time.monotonic() + 10)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code": "request_too_large"' in answer and b'"limit": 65536' in answer


def read_until_closed(sock: socket.socket, *, deadline: float) -> bytes:
    answer = b""
    while time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            return answer
        answer += data
    raise AssertionError(f"the server did not close the connection; it sent {answer[:200]!r}")


CHUNKED_HEAD = b"POST /api/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_without_the_proxy_a_trickling_client_on_a_refused_request_is_cut_off_at_the_deadline(
    transactional_db, tmp_path, framing
):
    """POST /api/orders/ without a token, 1 MB declared (or a chunked body), a byte every 0.2 s: gunicorn answers
    401 and closes the connection within the edge's deadline (mall/edge.py) instead of waiting for the body."""
    with processes.gunicorn(
        env=shop_env(), workers=2, threads=1, log_path=log_path(tmp_path, "gunicorn")
    ) as (url, _):  # fmt: skip
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.monotonic()
            chunked = framing == "chunked"
            sock.sendall(CHUNKED_HEAD if chunked else request_head("POST", "/api/orders/", port, 1_000_000))
            answer = b""
            while True:
                readable, _, _ = select.select([sock], [], [], 0.2)  # the trickle's pace
                if not readable:
                    with contextlib.suppress(OSError):  # the server shut its side: learnt here or on recv
                        sock.sendall(b"1\r\nx\r\n" if chunked else b"x")
                    assert time.monotonic() - started < 30, "the server kept the trickling connection"
                    continue
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    break
                answer += data
            cut_after = time.monotonic() - started

        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"connection: close" in answer.lower()
        assert cut_after < DRAIN_DEADLINE + 1.0, cut_after
        # The shop answers the next client at once.
        assert requests.get(f"{url}/api/goods/", timeout=5).status_code == 200
