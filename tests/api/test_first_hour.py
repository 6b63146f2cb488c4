"""A new user's first hour: what the browser asks for on its own, and the switches the README names."""

import logging
import os
import subprocess
import sys

import pytest

from tests.support import REPO


@pytest.mark.django_db
def test_the_favicon_is_served_without_a_warning(client, caplog):
    with caplog.at_level(logging.INFO, logger="django"):
        response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header (one image)
    assert "max-age=86400" in response["Cache-Control"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.mark.django_db
def test_the_favicon_is_read_only(client):
    assert client.post("/favicon.ico").status_code == 405


def sqlcommenter_setting(**env: str) -> subprocess.CompletedProcess:
    """``settings.MALL_SQLCOMMENTER`` as a shop process started with ``env`` sees it."""
    clean = {k: v for k, v in os.environ.items() if k not in {"MALL_SQLCOMMENTER", "OTEL_PYTHON_DJANGO_SQLCOMMENTER"}}
    code = "import django; django.setup(); from django.conf import settings; print(settings.MALL_SQLCOMMENTER)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**clean, "DJANGO_SETTINGS_MODULE": "mall.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "enabled", "warned"),
    [
        ({}, "False", False),
        ({"MALL_SQLCOMMENTER": "1"}, "True", False),
        ({"OTEL_PYTHON_DJANGO_SQLCOMMENTER": "1"}, "True", True),  # the old name, deprecated
        ({"OTEL_PYTHON_DJANGO_SQLCOMMENTER": "1", "MALL_SQLCOMMENTER": "0"}, "False", False),  # the new name wins
    ],
)
def test_the_sqlcommenter_switch_is_mall_sqlcommenter(env, enabled, warned):
    result = sqlcommenter_setting(**env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == enabled
    assert ("OTEL_PYTHON_DJANGO_SQLCOMMENTER is deprecated: set MALL_SQLCOMMENTER instead" in result.stderr) is warned


# --- the make run banner (scripts/banner; tests/e2e/test_make_run.py runs it inside a real `make run`)

BASE_URL = "http://127.0.0.1:8123"


def banner(**env: str) -> str:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "JAEGER_", "MALL_TRACE_STORE", "MALL_DEMO_PASSWORD"))
    }
    result = subprocess.run(
        ["scripts/banner", BASE_URL, "yes", ".venv/bin/python"],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def test_the_banner_names_the_built_in_trace_view_by_default():
    shown = banner()

    assert f"    Traces            {BASE_URL}/admin/traces/ (the built-in view; staff log-in)\n" in shown
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317" in shown  # how to reach Jaeger as well
    assert "not exported" not in shown and "not kept" not in shown
    assert f"    API (browsable)   {BASE_URL}/api/\n" in shown
    assert "password: mall-demo" in shown


def test_the_banner_names_where_spans_go_with_an_otlp_endpoint():
    shown = banner(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317")

    assert "    Jaeger            http://localhost:16686 (spans exported to http://collector:4317)\n" in shown
    assert "/admin/traces/" not in shown  # the store is off by default with an endpoint


def test_the_banner_names_both_when_the_store_is_kept_on_beside_an_exporter():
    shown = banner(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317", MALL_TRACE_STORE="on")

    assert f"{BASE_URL}/admin/traces/" in shown
    assert "spans exported to http://collector:4317" in shown


def test_the_banner_says_how_to_keep_traces_when_nothing_keeps_them():
    shown = banner(MALL_TRACE_STORE="off")

    assert "/admin/traces/" not in shown
    assert "    Traces            not kept: MALL_TRACE_STORE=on for the built-in view, or\n" in shown


@pytest.mark.django_db
def test_the_trace_view_the_banner_names_is_the_staff_trace_list(client, staff_user):
    (traces_line,) = [line for line in banner().splitlines() if "/admin/traces/" in line]
    url = traces_line.split()[1]
    client.force_login(staff_user)

    response = client.get(url.removeprefix(BASE_URL))

    assert response.status_code == 200
    assert response.templates[0].name.startswith("traces/")
