"""The HTTP edge: a refusal given before the request body was read must neither break the client's
keep-alive connection nor let a slow client hold a worker thread; and the client's address.

Django refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` and DRF answers 401/403/429 without
reading the body. The bytes the client still sends then sit on the socket; gunicorn 27 drains at
most 64 KB of them and otherwise closes the connection after announcing ``keep-alive``, so the
client's next request on it dies ("Remote end closed connection without response").

``DrainUnreadBody`` wraps the WSGI application: when the response starts and part of a declared
body is unread, it reads and discards the rest, up to ``DRAIN_MAX_BYTES`` and under one absolute
deadline for the whole rest (``DRAIN_DEADLINE``): a client sending a byte now and then is cut off
at the deadline (its socket's reading side is shut down), as a stalled one is. A larger or chunked
body over the bound, or a client cut off, is not drained: the response then announces
``Connection: close`` and the server closes after it. A slow client still holds a thread for up to
the deadline, and a body the application itself reads is not bounded here: exposed to the public,
gunicorn sits behind a buffering proxy (deploy/nginx/mall.conf), which hands it whole requests only.

``client_address`` is the client's address for the log-in lock (django-axes) and the throttles:
``X-Forwarded-For`` counts only behind ``MALL_TRUSTED_PROXIES`` proxies, as DRF's ``NUM_PROXIES``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from django.conf import settings

DRAIN_MAX_BYTES = 1024 * 1024  # 16× the API's body limit; a client sends a declared body anyway
# Seconds for all of the unread rest: a stalled or trickling client must not keep a worker thread.
# 64 KB (the API's limit) needs well under it on any link a shop's customer uses.
DRAIN_DEADLINE = 2.0
_CHUNK = 64 * 1024


class _CountingInput:
    """``wsgi.input`` that counts the bytes the application read."""

    def __init__(self, stream):
        self._stream = stream
        self.consumed = 0

    def read(self, *args):
        data = self._stream.read(*args)
        self.consumed += len(data)
        return data

    def readline(self, *args):
        data = self._stream.readline(*args)
        self.consumed += len(data)
        return data

    def readlines(self, *args):
        lines = self._stream.readlines(*args)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self):
        for line in self._stream:
            self.consumed += len(line)
            yield line


def _declared_length(environ) -> int:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:  # the server refuses such a request before the application sees it
        return 0


class _CutAtDeadline:
    """Shut the reading side of ``sock`` down at the deadline unless the drain ended first.

    gunicorn's ``read(n)`` waits until it holds n bytes, one ``recv`` after another, so a socket
    timeout (per ``recv``) never trips on a client sending a byte a second. A shutdown ends the
    ``recv`` the drain waits in (it returns no data); the response can still be written.
    """

    def __init__(self, sock, seconds: float):
        self._sock = sock
        self._lock = threading.Lock()
        self._done = False
        self.cut = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.cut = True
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RD)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        with self._lock:  # after this the timer cannot cut a connection that was drained in time
            self._done = True
        self._timer.cancel()


def _drain(stream: _CountingInput, remaining: int | None, sock) -> bool:
    """Read and discard ``remaining`` bytes (None: up to the end of a chunked body), at most
    ``DRAIN_MAX_BYTES``, within ``DRAIN_DEADLINE``; False if that was not all of it, the client was
    cut off at the deadline or ended early."""
    deadline = time.monotonic() + DRAIN_DEADLINE
    previous_timeout = sock.gettimeout() if sock is not None else None
    budget = DRAIN_MAX_BYTES
    cutter = _CutAtDeadline(sock, DRAIN_DEADLINE) if sock is not None else contextlib.nullcontext()
    try:
        with cutter:
            if sock is not None:
                sock.settimeout(DRAIN_DEADLINE)  # no single recv outlasts the deadline, even without the cut
            while remaining is None or remaining > 0:
                if time.monotonic() > deadline:
                    return False
                data = stream.read(min(_CHUNK, budget + 1 if remaining is None else remaining))
                if not data or getattr(cutter, "cut", False):
                    return remaining is None and not getattr(cutter, "cut", False)
                budget -= len(data)
                if budget < 0:
                    return False
                if remaining is not None:
                    remaining -= len(data)
            return True
    except Exception:  # noqa: BLE001 - a timeout, a reset, gunicorn's NoMoreData or a bad chunk: the
        return False  # response is answered all the same, on a connection that then closes
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous_timeout)


def _close_after_response(start_response) -> None:
    """Make the server close the connection after this response, announcing ``Connection: close``.

    A WSGI application cannot set hop-by-hop headers (gunicorn drops them); gunicorn's
    ``start_response`` is its response object's method, whose ``force_close`` does this.
    """
    response = getattr(start_response, "__self__", None)
    if response is not None and hasattr(response, "force_close"):
        response.force_close()


class DrainUnreadBody:
    """WSGI middleware: see the module docstring."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        declared = _declared_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked and not declared:
            return self.application(environ, start_response)
        stream = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = stream

        def start_response_after_drain(status, headers, exc_info=None):
            sock = environ.get("gunicorn.socket")
            if chunked:
                drained = _drain(stream, None, sock)
            else:
                remaining = declared - stream.consumed
                drained = remaining <= 0 or (remaining <= DRAIN_MAX_BYTES and _drain(stream, remaining, sock))
            if not drained:
                _close_after_response(start_response)
            return start_response(status, headers, exc_info)

        return self.application(environ, start_response_after_drain)


def client_address(request) -> str | None:
    """Return the client's address: ``REMOTE_ADDR``, or behind ``settings.MALL_TRUSTED_PROXIES`` proxies
    the address the outermost of them saw, from ``X-Forwarded-For`` (each proxy appends its peer).

    The same rule as DRF's throttles with ``NUM_PROXIES``: the n-th address from the right, never one a
    client wrote further left, so a client cannot pass for another.
    """
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = getattr(settings, "MALL_TRUSTED_PROXIES", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote_addr
    addresses = [address.strip() for address in forwarded.split(",")]
    return addresses[-min(proxies, len(addresses))] or remote_addr
