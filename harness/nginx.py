"""Run the shipped nginx configuration (deploy/nginx/mall.conf) unprivileged from a temporary directory.

The tests start what users deploy: the same file, its two placeholders filled in, included in the http
block of a minimal main configuration that keeps the pid, logs and temporary files in ``prefix``.
"""

from __future__ import annotations

import os
import pwd
import re
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from harness.processes import REPO, free_port, running, tail

NGINX = "/usr/sbin/nginx"  # Debian's package, as the compose image
MALL_CONF = REPO / "deploy" / "nginx" / "mall.conf"

_MAIN = """\
daemon off;
worker_processes 1;
{user}pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/mall.conf;
}}
"""


def render_mall_conf(*, listen: str, upstream: str) -> str:
    """deploy/nginx/mall.conf with its placeholders filled in (as the nginx image's envsubst does)."""
    text = MALL_CONF.read_text()
    text = text.replace("${NGINX_LISTEN}", listen).replace("${MALL_UPSTREAM}", upstream)
    left = re.findall(r"\$\{[A-Za-z0-9_]+\}", text)
    assert not left, f"mall.conf has placeholders the harness does not fill: {left}"
    return text


def _user_line() -> str:
    """As root, the workers keep the master's user (else nginx switches them to nobody, who cannot write here)."""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""


@contextmanager
def nginx(*, upstream: str, prefix: Path, start_timeout: float = 30):
    """nginx with the shipped configuration on a free port of 127.0.0.1 in front of ``upstream``
    (host:port); yields its port once it accepts connections."""
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (prefix / "mall.conf").write_text(render_mall_conf(listen=f"127.0.0.1:{port}", upstream=upstream))
    (prefix / "nginx.conf").write_text(_MAIN.format(prefix=prefix, user=_user_line()))
    args = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    log = prefix / "nginx.out"
    with running(args, env=dict(os.environ), log_path=log) as process:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{tail(log)}\n{tail(prefix / 'error.log')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    error_log = tail(prefix / "error.log")
                    raise RuntimeError(f"nginx did not listen in {start_timeout}s:\n{error_log}") from exc
                time.sleep(0.1)
        yield port
