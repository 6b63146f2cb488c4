"""Behind a proxy only when told: X-Forwarded-Proto is trusted only with DJANGO_BEHIND_PROXY=1, and the
compose file publishes its ports on the host's loopback unless MALL_BIND says otherwise."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.support import REPO

SERVICES = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def proxy_header(**env: str):
    """SECURE_PROXY_SSL_HEADER of the real settings module in a fresh process with ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OTEL_"))}
    code = "from django.conf import settings; import json; print(json.dumps(settings.SECURE_PROXY_SSL_HEADER))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "mall.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("behind_proxy", [None, "0"])
def test_the_forwarded_proto_header_is_not_trusted_by_default(behind_proxy):
    env = {} if behind_proxy is None else {"DJANGO_BEHIND_PROXY": behind_proxy}
    assert proxy_header(**env) is None


def test_the_forwarded_proto_header_is_trusted_when_behind_a_proxy():
    assert proxy_header(DJANGO_BEHIND_PROXY="1") == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_a_client_cannot_claim_https_without_a_proxy(db, client, settings):
    """With the default settings a direct client's X-Forwarded-Proto: https changes nothing."""
    settings.SECURE_PROXY_SSL_HEADER = proxy_header()
    request = client.get("/api/goods/", HTTP_X_FORWARDED_PROTO="https").wsgi_request
    assert not request.is_secure()


def published_ports() -> list[tuple[str, str]]:
    return [(name, str(port)) for name, service in SERVICES.items() for port in service.get("ports", [])]


@pytest.mark.parametrize(("service", "port"), published_ports())
def test_compose_publishes_on_loopback_unless_told(service, port):
    match = re.fullmatch(r"\$\{MALL_BIND:-([^}]*)\}:(\d+):(\d+)", port)
    assert match, f"{service} publishes {port!r} on every interface"
    assert match.group(1) == "127.0.0.1"


def test_compose_publishes_the_shop_and_jaeger():
    assert {port for _, port in published_ports()} >= {
        "${MALL_BIND:-127.0.0.1}:8000:8000",
        "${MALL_BIND:-127.0.0.1}:16686:16686",
    }
