"""docker-compose.yml cannot run here: its structure and wiring are checked instead, and its environment
is fed to the real settings module."""

import json
import re
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (REPO / "Dockerfile").read_text()
SHOP_PROCESSES = ["shop", "worker", "grpc", "migrate"]


def mounted(service: str, target: str):
    """The repository file a service mounts at ``target`` (compose short syntax ``./path:target[:ro]``)."""
    for volume in SERVICES[service].get("volumes", []):
        source, mount_target = str(volume).split(":")[:2]
        if mount_target == target:
            assert source.startswith("./"), f"{service} mounts {source}, not a file of the repository"
            return REPO / source
    raise AssertionError(f"{service} mounts nothing at {target}")


def jaeger_config_path():
    args = SERVICES["jaeger"]["command"]
    return mounted("jaeger", args[args.index("--config") + 1])


JAEGER_CONFIG = yaml.safe_load(jaeger_config_path().read_text())
PROMETHEUS_CONFIG = yaml.safe_load(mounted("prometheus", "/etc/prometheus/prometheus.yml").read_text())


def local_apps() -> set[str]:
    """The apps of INSTALLED_APPS that are folders of this repository."""
    probe = "import json; from django.conf import settings as s; print(json.dumps(s.INSTALLED_APPS))"
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mall.settings", "DJANGO_SECRET_KEY": "x" * 50}
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return {app.split(".")[0] for app in json.loads(result.stdout) if (REPO / app.split(".")[0]).is_dir()}


def interpolated(value) -> str:
    """A compose value with ``${VAR:-default}`` taken at its default (nothing set in the shell)."""
    return re.sub(r"\$\{[A-Z0-9_]+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(value))


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolated(value) for key, value in env.items()}


def container_ports(service: str) -> dict[int, int]:
    """{container port: host port} of the service's published ports."""
    published = {}
    for port in SERVICES[service].get("ports", []):
        host, container = str(port).rsplit(":", 1)
        published[int(container.split("/")[0])] = int(host.rsplit(":", 1)[-1])
    return published


def command(service: str) -> str:
    value = SERVICES[service].get("command", "")
    return " ".join(value) if isinstance(value, list) else value


def test_the_stack_is_shop_worker_grpc_mysql_jaeger_and_prometheus():
    assert {"shop", "worker", "grpc", "mysql", "jaeger", "prometheus"} <= set(SERVICES)
    assert re.fullmatch(r"mysql:8(\.\d+)*", SERVICES["mysql"]["image"])


def test_jaeger_is_a_pinned_v2_all_in_one_publishing_otlp_and_the_ui():
    assert re.fullmatch(r"(cr\.jaegertracing\.io/)?jaegertracing/jaeger:2\.\d+\.\d+", SERVICES["jaeger"]["image"])
    assert {4317: 4317, 4318: 4318, 16686: 16686}.items() <= container_ports("jaeger").items()
    # Jaeger v2's receivers listen on localhost unless told otherwise: unreachable from the shop.
    protocols = JAEGER_CONFIG["receivers"]["otlp"]["protocols"]
    assert (protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]) == ("0.0.0.0:4317", "0.0.0.0:4318")


@pytest.mark.parametrize("service", SHOP_PROCESSES)
def test_shop_processes_export_to_jaeger_on_the_port_of_their_protocol(service):
    env = environment(service)
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")

    assert endpoint.hostname == "jaeger"
    assert endpoint.port == {"grpc": 4317, "http/protobuf": 4318}[protocol]
    assert env.get("OTEL_SERVICE_NAME", "mall") == "mall"
    assert env["OTEL_METRICS_EXPORTER"] == "otlp"  # to Jaeger's metrics pipeline, on to Prometheus
    assert "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" not in env  # the same collector as the traces


@pytest.mark.parametrize("service", SHOP_PROCESSES)
def test_shop_processes_use_the_mysql_service_database(service):
    database = urlsplit(environment(service)["DATABASE_URL"])
    mysql = environment("mysql")

    assert database.scheme == "mysql"
    assert (database.hostname, database.port or 3306) == ("mysql", 3306)
    assert (database.username, database.password) == (mysql["MYSQL_USER"], mysql["MYSQL_PASSWORD"])
    assert database.path.lstrip("/") == mysql["MYSQL_DATABASE"]
    assert SERVICES[service]["depends_on"]


def test_the_admin_links_open_the_published_jaeger_ui():
    ui = urlsplit(environment("shop")["JAEGER_UI_URL"])

    assert ui.hostname == "localhost"
    assert ui.port == container_ports("jaeger")[16686]


def test_the_shop_is_gunicorn_without_preload_and_the_worker_is_qcluster():
    assert command("shop").startswith("gunicorn") and "mall.wsgi" in command("shop")
    assert "--preload" not in command("shop")
    assert environment("shop")["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert command("worker").split()[-2:] == ["manage.py", "qcluster"]
    assert "migrate" in command("migrate")
    assert SERVICES["shop"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_image_holds_every_app_and_the_mysql_driver():
    assert all(SERVICES[service]["build"] == "." for service in SHOP_PROCESSES)
    copied = set(re.findall(r"^COPY (?!--from)(.+?) \S+$", DOCKERFILE, flags=re.MULTILINE))
    copied = {path for line in copied for path in line.split()}
    assert {"manage.py", "gunicorn.conf.py", "templates"} <= copied
    assert local_apps() <= copied, "every app of INSTALLED_APPS that lives in this repository"
    assert "-r /src/requirements-mysql.lock" in DOCKERFILE and "--require-hashes" in DOCKERFILE


def test_the_settings_accept_the_shop_environment():
    """The real settings module, given the compose environment: production mode over plain HTTP on MySQL."""
    probe = (
        "import json; from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(json.dumps({'debug': s.DEBUG, 'ssl': s.SECURE_SSL_REDIRECT, 'engine': d['ENGINE'], "
        "'host': d['HOST'], 'name': d['NAME'], 'jaeger': s.JAEGER_UI_URL, 'fail': s.CHECKOUT_FAIL_STEP, "
        "'hosts': s.ALLOWED_HOSTS}))"
    )
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mall.settings", **environment("shop")}

    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["debug"] is False and settings["ssl"] is False
    assert (settings["engine"], settings["host"], settings["name"]) == ("django.db.backends.mysql", "mysql", "mall")
    assert settings["jaeger"] == "http://localhost:16686"
    assert settings["fail"] is None
    assert "localhost" in settings["hosts"]


def test_fault_injection_in_compose_needs_the_explicit_switch():
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mall.settings", **environment("shop")}
    env["CHECKOUT_FAIL_STEP"] = "save_order"
    probe = "from django.conf import settings; print(settings.CHECKOUT_FAIL_STEP)"

    refused = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    allowed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={**env, "MALL_ALLOW_FAULT_INJECTION": "1"},
        capture_output=True,
        text=True,
    )

    assert refused.returncode != 0 and "CHECKOUT_FAIL_STEP" in refused.stderr
    assert allowed.returncode == 0 and allowed.stdout.strip() == "save_order"


def test_the_grpc_service_is_grpcserver_on_9500_published_on_loopback():
    assert command("grpc") == "python manage.py grpcserver"
    assert environment("grpc")["MALL_GRPC_BIND"] == "0.0.0.0:9500"
    assert container_ports("grpc") == {9500: 9500}
    assert all(str(port).startswith("${MALL_BIND:-127.0.0.1}:") for port in SERVICES["grpc"]["ports"])


# --- Jaeger's pipelines (deploy/jaeger/config.yaml) and the Prometheus behind its Monitor tab
KINDS = {"receivers": "receivers", "processors": "processors", "exporters": "exporters"}


def pipeline_type(pipeline_id: str) -> str:
    return pipeline_id.split("/")[0]


def test_jaeger_runs_the_mounted_config_pinned_like_prometheus():
    assert SERVICES["jaeger"]["command"][:1] == ["--config"]
    assert jaeger_config_path().is_relative_to(REPO / "deploy" / "jaeger")
    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+(@sha256:[0-9a-f]{64})?", SERVICES["prometheus"]["image"])
    assert all(
        str(volume).endswith(":ro") for service in ("jaeger", "prometheus") for volume in SERVICES[service]["volumes"]
    )


@pytest.mark.parametrize("pipeline_id", sorted(JAEGER_CONFIG["service"]["pipelines"]))
def test_every_component_a_pipeline_names_is_configured(pipeline_id):
    """A name a pipeline references but no section defines fails Jaeger at start-up ("references ... which
    is not configured"); connectors count as receivers and exporters."""
    pipeline = JAEGER_CONFIG["service"]["pipelines"][pipeline_id]
    connectors = set(JAEGER_CONFIG.get("connectors") or {})
    assert pipeline.get("receivers") and pipeline.get("exporters"), pipeline_id
    for kind in ("receivers", "processors", "exporters"):
        defined = set(JAEGER_CONFIG.get(kind) or {}) | (connectors if kind != "processors" else set())
        assert set(pipeline.get(kind, [])) <= defined, (pipeline_id, kind)
    assert pipeline_type(pipeline_id) in {"traces", "metrics", "logs"}


def test_every_configured_component_and_extension_is_used():
    pipelines = JAEGER_CONFIG["service"]["pipelines"].values()
    used = {name for pipeline in pipelines for kind in KINDS for name in pipeline.get(kind, [])}
    for kind in ("receivers", "processors", "exporters", "connectors"):
        assert set(JAEGER_CONFIG.get(kind) or {}) <= used, kind
    assert set(JAEGER_CONFIG["service"]["extensions"]) == set(JAEGER_CONFIG["extensions"])


def test_the_spanmetrics_connector_turns_the_traces_into_metrics_for_prometheus():
    pipelines = JAEGER_CONFIG["service"]["pipelines"]
    assert "spanmetrics" in JAEGER_CONFIG["connectors"]
    (traces,) = [p for pid, p in pipelines.items() if pipeline_type(pid) == "traces"]
    assert "spanmetrics" in traces["exporters"] and "jaeger_storage_exporter" in traces["exporters"]
    span_metrics = [
        p for pid, p in pipelines.items() if pipeline_type(pid) == "metrics" and "spanmetrics" in p["receivers"]
    ]
    assert span_metrics and all("prometheus" in p["exporters"] for p in span_metrics)
    assert (
        JAEGER_CONFIG["exporters"]["jaeger_storage_exporter"]["trace_storage"]
        in (JAEGER_CONFIG["extensions"]["jaeger_storage"]["backends"])
    )


def test_the_shops_otlp_metrics_reach_the_prometheus_exporter():
    metrics_from_otlp = [
        p
        for pid, p in JAEGER_CONFIG["service"]["pipelines"].items()
        if pipeline_type(pid) == "metrics" and "otlp" in p["receivers"]
    ]
    assert metrics_from_otlp and all("prometheus" in p["exporters"] for p in metrics_from_otlp)


def test_prometheus_scrapes_the_exporter_and_the_monitor_tab_queries_prometheus():
    exporter_port = int(JAEGER_CONFIG["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1])
    targets = {
        target for job in PROMETHEUS_CONFIG["scrape_configs"] for c in job["static_configs"] for target in c["targets"]
    }
    assert f"jaeger:{exporter_port}" in targets

    query = JAEGER_CONFIG["extensions"]["jaeger_query"]["storage"]
    storage = JAEGER_CONFIG["extensions"]["jaeger_storage"]
    assert query["traces"] in storage["backends"]
    prometheus = urlsplit(storage["metric_backends"][query["metrics"]]["prometheus"]["endpoint"])
    assert (prometheus.hostname, prometheus.port) == ("prometheus", 9090)
    assert 9090 in container_ports("prometheus")
    assert all(str(port).startswith("${MALL_BIND:-127.0.0.1}:") for port in SERVICES["prometheus"]["ports"])


@pytest.mark.parametrize("service", SHOP_PROCESSES)
def test_the_shops_endpoint_is_the_receiver_jaeger_listens_on(service):
    env = environment(service)
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    protocol = {"grpc": "grpc", "http/protobuf": "http"}[env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]
    listening = JAEGER_CONFIG["receivers"]["otlp"]["protocols"][protocol]["endpoint"]
    assert endpoint.hostname == "jaeger" and endpoint.port == int(listening.rsplit(":", 1)[1])


def test_gunicorn_is_reached_only_through_the_buffering_proxy():
    """The shop's port is not published: the host reaches it through nginx, which runs deploy/nginx/mall.conf."""
    nginx = SERVICES["nginx"]
    assert "ports" not in SERVICES["shop"]
    assert container_ports("nginx") == {8000: 8000}
    assert re.fullmatch(r"nginx:1\.\d+\.\d+-bookworm", nginx["image"])  # pinned, Debian-based
    assert "./deploy/nginx/mall.conf:/etc/nginx/templates/mall.conf.template:ro" in nginx["volumes"]
    env = environment("nginx")
    assert env["MALL_UPSTREAM"] == f"shop:{environment('shop')['GUNICORN_BIND'].rsplit(':', 1)[1]}"
    assert env["NGINX_LISTEN"] == "8000"
    assert set(re.findall(r"\$\{([A-Z_]+)\}", (REPO / "deploy/nginx/mall.conf").read_text())) == set(env)
    assert SERVICES["nginx"]["depends_on"]["shop"]["condition"] == "service_healthy"
    assert environment("shop")["MALL_TRUSTED_PROXIES"] == "1"  # one proxy appends to X-Forwarded-For


def test_nginx_lets_go_of_idle_upstream_connections_before_gunicorn_does():
    """Else nginx may send a request on a connection gunicorn is closing: a POST is not retried, and fails 502."""
    upstream = re.search(r"^upstream mall_shop \{(.*?)^\}", (REPO / "deploy/nginx/mall.conf").read_text(), re.M | re.S)
    nginx_idle = re.search(r"^\s*keepalive_timeout (\d+)s;", upstream.group(1), re.M)
    gunicorn_idle = re.search(r"^keepalive = (\d+)$", (REPO / "gunicorn.conf.py").read_text(), re.M)
    assert int(nginx_idle.group(1)) < int(gunicorn_idle.group(1))
