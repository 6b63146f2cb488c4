"""The HTTP edge: an answer given before the request body was read must not break the keep-alive connection.

Django refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` and DRF answers 401/403/429 without
reading the body. The bytes the client still sends then sit on the socket; gunicorn 27 drains at
most 64 KB of them and otherwise closes the connection after announcing ``keep-alive``, so the
client's next request on it dies ("Remote end closed connection without response").

``DrainUnreadBody`` wraps the WSGI application: when the response starts and part of a declared
body is unread, it reads and discards the rest (up to ``DRAIN_MAX_BYTES``, each read bounded by
``DRAIN_READ_TIMEOUT`` on gunicorn's socket). A larger or chunked body, or a client that stalls,
is not drained: the response then announces ``Connection: close`` and the server closes after it.
"""

from __future__ import annotations

import contextlib

DRAIN_MAX_BYTES = 1024 * 1024  # 16× the API's body limit; a client sends a declared body anyway
DRAIN_READ_TIMEOUT = 5.0  # seconds per read: a stalled client must not keep a worker thread
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


def _drain(stream: _CountingInput, remaining: int | None, sock) -> bool:
    """Read and discard ``remaining`` bytes (None: up to the end of a chunked body), at most
    ``DRAIN_MAX_BYTES``; False if that was not all of it, the client stalled or ended early."""
    previous_timeout = sock.gettimeout() if sock is not None else None
    budget = DRAIN_MAX_BYTES
    try:
        if sock is not None:
            sock.settimeout(DRAIN_READ_TIMEOUT)
        while remaining is None or remaining > 0:
            data = stream.read(min(_CHUNK, budget + 1 if remaining is None else remaining))
            if not data:
                return remaining is None
            budget -= len(data)
            if budget < 0:
                return False
            if remaining is not None:
                remaining -= len(data)
        return True
    except OSError:  # socket.timeout included
        return False
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
