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
