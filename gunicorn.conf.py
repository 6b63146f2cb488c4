"""gunicorn settings of the shop: ``gunicorn mall.wsgi:application`` (this file is read from the working directory).

Sized by the environment: ``GUNICORN_BIND`` (default 127.0.0.1:8000; 0.0.0.0:8000 in a container),
``GUNICORN_WORKERS`` (default 2), ``GUNICORN_THREADS`` (default 1, see below),
``GUNICORN_TIMEOUT`` and ``GUNICORN_ACCESSLOG`` ("-" for stdout). Command-line flags override them.

Exposed to clients, gunicorn sits behind a buffering proxy (deploy/nginx/mall.conf, docker compose): each
worker thread serves one request at a time, and a client sending its body slowly would hold it.

Telemetry: the app is never preloaded. OpenTelemetry's exporter threads and gRPC channel must be
created in each worker after the fork, not in the master (a gRPC channel does not survive a fork).
"""

import os

from mall.env import env_int, env_str
from mall.startup import exit_on_configuration_error, load_settings_or_exit

# In the master, before any worker: a misconfiguration stops gunicorn with one line naming the
# variable, instead of workers failing to boot one after another.
load_settings_or_exit()

# One thread per worker by default: the shop is CPU-bound on a nearby database, and in one process the
# threads only queue for the GIL. Measured on 2 cores (docs/PERFORMANCE.md), 2 workers × 1 thread
# served ~25 % more checkouts than 2 × 4, with a 30–40 % lower p99. Raise GUNICORN_THREADS when the
# database is far away (threads overlap its round trips). gthread even with one thread: keep-alive,
# and idle or slow connections wait in the worker's poller rather than occupy its thread.
with exit_on_configuration_error():
    bind = env_str("GUNICORN_BIND") or "127.0.0.1:8000"
    workers = env_int("GUNICORN_WORKERS", 2, minimum=1)
    threads = env_int("GUNICORN_THREADS", 1, minimum=1)
    timeout = env_int("GUNICORN_TIMEOUT", 30)  # 0: no timeout (gunicorn's meaning)
    accesslog = env_str("GUNICORN_ACCESSLOG") or None
worker_class = "gthread"
# Idle keep-alive seconds: longer than nginx's upstream keepalive_timeout (deploy/nginx/mall.conf), so nginx
# drops an idle connection before gunicorn does and never sends a request on one gunicorn is closing.
keepalive = 2
graceful_timeout = 15  # a worker's final span flush has this long after SIGTERM
preload_app = False  # see the module docstring: telemetry starts after the fork
# gunicorn >= 25.1's runtime control socket sits at one path per user (~/.gunicorn/gunicorn.ctl), which
# several servers on one host (tests, benchmarks) would take from each other; nothing here uses it.
control_socket_disable = True


def post_fork(server, worker):
    """Set up telemetry in the new worker, before it imports the WSGI app (its middleware is added then)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mall.settings")
    from mall.telemetry import configure_telemetry

    configure_telemetry()


def worker_exit(server, worker):
    """Export what the worker still buffers, so a restart or deploy loses no spans or metrics."""
    from mall.telemetry import flush_telemetry

    flush_telemetry(timeout_millis=5000)
