"""The bench's own database and the environment of the shop processes it starts (and of its own process)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

from harness.processes import REPO

PAY_TIMEOUT = 7 * 24 * 3600  # no checkout of the bench ever becomes overdue on its own


def shop_environment(database_url: str) -> dict[str, str]:
    """Environment of every shop process: production settings over plain HTTP, telemetry off until chosen."""
    inherited = ("OTEL_", "DJANGO_", "GUNICORN_", "CHECKOUT_", "MALL_")  # the bench decides these
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="mall.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_DEBUG="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        ORDER_PAY_TIMEOUT=str(PAY_TIMEOUT),
        CHECKOUT_THROTTLE_RATE="off",  # each client checks out hundreds of times a minute by design
        MALL_LOGIN_THROTTLE_RATE="off",  # the load tool logs every shopper in from one address
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    return env


def tracing_on(env: dict[str, str], endpoint: str, protocol: str, extra: list[str] = ()) -> dict[str, str]:
    return {
        **env,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        # Under load the processor exports whenever 512 spans are queued; its idle flush (5 s by default)
        # only decides how soon a batch's tail arrives, which the bench waits for between batches.
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        **dict(item.split("=", 1) for item in extra),  # experiments override the above
    }


def tracing_off(env: dict[str, str]) -> dict[str, str]:
    return {**env, "OTEL_SDK_DISABLED": "true"}


def sampled(env: dict[str, str], sampler: str, argument: str) -> dict[str, str]:
    return {**env, "OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": argument}


def with_trace_store(env: dict[str, str]) -> dict[str, str]:
    return {**env, "MALL_TRACE_STORE": "on"}


def database_name(url: str) -> str:
    parsed = urlparse(url)
    return Path(parsed.path).name if url.startswith("sqlite") else parsed.path.lstrip("/")


def mysql_server_connection(url: str):
    """A MySQLdb connection to the server of a ``mysql://`` URL, no database selected."""
    import MySQLdb

    parsed = urlparse(url)
    return MySQLdb.connect(
        host=parsed.hostname or "127.0.0.1", port=parsed.port or 3306, user=parsed.username or "root",
        password=parsed.password or "",
    )  # fmt: skip


def recreate_database(url: str) -> None:
    """Drop and create the bench's database (SQLite: delete its files); its name must contain "bench"."""
    name = database_name(url)
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: the bench database's name must contain 'bench'")
    if url.startswith("sqlite"):
        path = Path(urlparse(url).path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    connection = mysql_server_connection(url)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    connection.close()


def prepare(env: dict[str, str]) -> None:
    """Set this process up like the shop processes (no telemetry, quiet logs), on a recreated and migrated
    ``DATABASE_URL`` of ``env``: it seeds data and measures in-process."""
    os.environ.update({**env, "OTEL_SDK_DISABLED": "true", "MALL_LOG_LEVEL": "WARNING"})
    for key in [k for k in os.environ if k.startswith("OTEL_") and k != "OTEL_SDK_DISABLED"]:
        del os.environ[key]

    print(f"database {env['DATABASE_URL']}: recreating, migrating, seeding", flush=True)
    recreate_database(env["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def clear_redis_queue(url: str) -> None:
    """Empty the shop's django-q2 queue on a Redis broker: no task of an earlier run is left to run."""
    import redis

    client = redis.from_url(url)
    for key in client.scan_iter("django_q:mall:*"):
        client.delete(key)
