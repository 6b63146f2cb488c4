"""A real shop (gunicorn) whose trace collector is not there: it keeps answering and counts the spans it loses.

Traces go to a port where nothing listens; metrics go to the test's receiver, which sees the shop's
``mall.telemetry.spans.dropped`` grow (by reason: the batch queue's overflow, the failed exports).
"""

import socket

import pytest

from tests.e2e.test_faults_wire import Shopper
from tests.support import read_log, shop_env, shop_server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def nowhere() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def dropped(otlp_receiver) -> dict[str, int]:
    """The latest cumulative count per reason the shop reported."""
    latest: dict[str, int] = {}
    for point in otlp_receiver.metric_points("mall.telemetry.spans.dropped"):
        reason = point.attributes["reason"]
        latest[reason] = max(latest.get(reason, 0), int(point.value))
    return latest


def test_checkouts_answer_201_while_the_collector_is_away_and_the_lost_spans_are_counted(
    otlp_receiver, goods_in_stock, tmp_path
):
    env = shop_env(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=nowhere(),
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=otlp_receiver.grpc_endpoint,
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="1",  # seconds an export tries before its batch counts as lost
        OTEL_BSP_MAX_QUEUE_SIZE="32",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="16",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
    )
    goods = goods_in_stock(stock=100)
    with shop_server(env=env, log_dir=tmp_path, workers=1) as base_url:
        shopper = Shopper(base_url, goods)
        answers = [shopper.checkout().status_code for _ in range(10)]
        counts = wait_until(
            lambda: (found := dropped(otlp_receiver)).get("queue_full") and found.get("export_failed") and found,
            timeout=30,
            what="the dropped-span counts of both reasons at the receiver",
        )
    log = read_log(tmp_path, "gunicorn")

    assert answers == [201] * 10
    assert counts["queue_full"] > 0 and counts["export_failed"] > 0
    assert "span export: the collector does not answer" in log
    assert not otlp_receiver.spans  # no span reached anyone: the traces' collector was never there
