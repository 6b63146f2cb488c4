"""The spans lost on the way to the collector are counted (``mall.telemetry.export_drops``), and the log tells
when an outage begins and ends: a real OTLP/gRPC exporter, a collector that is away, then back on its port."""

import logging
import socket

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from harness.otlp import OtlpServer
from mall.telemetry.export_drops import EXPORT_FAILED, DropCountingExporter, dropped_spans


def finished_spans(count: int):
    tracer = TracerProvider().get_tracer("test")
    spans = []
    for index in range(count):
        span = tracer.start_span(f"span {index}")
        span.end()
        spans.append(span)
    return spans


def test_failed_exports_are_counted_and_the_recovery_says_how_many_were_lost(caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # gRPC waits out a reconnect backoff (1 s, growing) after failed connects: kept short so the export after
    # the collector is back connects at once; 3 s leave room for one retry if its first attempt meets the old
    # channel state.
    backoff = (
        ("grpc.initial_reconnect_backoff_ms", 50),
        ("grpc.max_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 50),
    )
    exporter = DropCountingExporter(
        OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True, timeout=3, channel_options=backoff)
    )
    before = dropped_spans().get(EXPORT_FAILED, 0)
    caplog.set_level(logging.WARNING, logger="mall.telemetry.export_drops")

    assert exporter.export(finished_spans(3)) is SpanExportResult.FAILURE
    assert exporter.export(finished_spans(2)) is SpanExportResult.FAILURE
    assert dropped_spans()[EXPORT_FAILED] - before == 5

    received = []
    with OtlpServer(on_traces=lambda request, _: received.append(request), on_metrics=print, grpc_port=port):
        assert exporter.export(finished_spans(4)) is SpanExportResult.SUCCESS
    exporter.shutdown()

    assert exporter.exported == 4 and len(received) == 1
    assert dropped_spans()[EXPORT_FAILED] - before == 5
    messages = [record.getMessage() for record in caplog.records]
    assert sum("the collector does not answer" in message for message in messages) == 1  # once per outage
    assert "span export: the collector answers again; 5 spans dropped meanwhile" in messages
