"""An in-process OTLP receiver for tests: what the shop really puts on the wire, decoded.

It speaks both OTLP transports the shop can be configured with:

- OTLP/gRPC: ``TraceService`` and ``MetricsService`` (opentelemetry-proto's generated stubs, grpcio);
- OTLP/HTTP: ``POST /v1/traces`` and ``POST /v1/metrics`` with binary protobuf bodies (plain or gzip).

Requests are decoded with opentelemetry-proto into simple records (:class:`ReceivedSpan`,
:class:`ReceivedMetric`). Both listen on free ports of 127.0.0.1. ``stall()`` makes the receiver
hold every export request until ``resume()`` (a slow collector); ``stop()`` releases them.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

_STALL_LIMIT = 60.0  # seconds a stalled export is held at most, so a forgotten resume() cannot hang a test


def decode_value(value: AnyValue):
    """An OTLP ``AnyValue`` as the Python value it carries."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(decode_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return getattr(value, kind)


def decode_attributes(key_values) -> dict:
    return {kv.key: decode_value(kv.value) for kv in key_values}


@dataclass(frozen=True)
class ReceivedEvent:
    name: str
    attributes: dict


@dataclass(frozen=True)
class ReceivedLink:
    trace_id: str
    span_id: str
    attributes: dict


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER
    attributes: dict
    status: str  # UNSET, OK, ERROR
    status_message: str
    events: tuple[ReceivedEvent, ...]
    links: tuple[ReceivedLink, ...]
    resource: dict
    scope: str
    transport: str  # "grpc" or "http": how it reached the receiver
    start_time: int  # Unix nanoseconds
    end_time: int


@dataclass(frozen=True)
class ReceivedPoint:
    attributes: dict
    value: float | int | None  # sums and gauges
    count: int | None = None  # histograms
    sum: float | None = None  # histograms


@dataclass(frozen=True)
class ReceivedMetric:
    name: str
    unit: str
    type: str  # sum, gauge, histogram, exponential_histogram, summary
    points: tuple[ReceivedPoint, ...]
    resource: dict
    transport: str


def _span_kind(kind: int) -> str:
    return Span.SpanKind.Name(kind).removeprefix("SPAN_KIND_")


def _status_code(code: int) -> str:
    return Status.StatusCode.Name(code).removeprefix("STATUS_CODE_")


def decode_spans(request: trace_service_pb2.ExportTraceServiceRequest, *, transport: str) -> list[ReceivedSpan]:
    received = []
    for resource_spans in request.resource_spans:
        resource = decode_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                received.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=_span_kind(span.kind),
                        attributes=decode_attributes(span.attributes),
                        status=_status_code(span.status.code),
                        status_message=span.status.message,
                        events=tuple(ReceivedEvent(e.name, decode_attributes(e.attributes)) for e in span.events),
                        links=tuple(
                            ReceivedLink(link.trace_id.hex(), link.span_id.hex(), decode_attributes(link.attributes))
                            for link in span.links
                        ),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        transport=transport,
                        start_time=span.start_time_unix_nano,
                        end_time=span.end_time_unix_nano,
                    )
                )
    return received


def _number(point) -> float | int | None:
    kind = point.WhichOneof("value")
    return getattr(point, kind) if kind else None


def decode_metrics(request: metrics_service_pb2.ExportMetricsServiceRequest, *, transport: str) -> list[ReceivedMetric]:
    received = []
    for resource_metrics in request.resource_metrics:
        resource = decode_attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data_type = metric.WhichOneof("data")
                data = getattr(metric, data_type)
                if data_type in ("sum", "gauge"):
                    points = tuple(ReceivedPoint(decode_attributes(p.attributes), _number(p)) for p in data.data_points)
                else:
                    points = tuple(
                        ReceivedPoint(decode_attributes(p.attributes), None, count=p.count, sum=p.sum)
                        for p in data.data_points
                    )
                received.append(ReceivedMetric(metric.name, metric.unit, data_type, points, resource, transport))
    return received


@dataclass
class OtlpReceiver:
    """Collects what OTLP exporters send; ``grpc_endpoint`` / ``http_endpoint`` to point them at."""

    _spans: list[ReceivedSpan] = field(default_factory=list)
    _metrics: list[ReceivedMetric] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _flowing: threading.Event = field(default_factory=threading.Event)
    grpc_endpoint: str = ""
    http_endpoint: str = ""
    _grpc_server: grpc.Server | None = None
    _http_server: ThreadingHTTPServer | None = None

    # --- what was received
    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    @property
    def metrics(self) -> list[ReceivedMetric]:
        with self._lock:
            return list(self._metrics)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
            self._metrics.clear()

    def spans_named(self, name: str, *, trace_id: str | None = None) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name and (trace_id is None or s.trace_id == trace_id)]

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    def children_of(self, parent: ReceivedSpan) -> list[ReceivedSpan]:
        return [s for s in self.trace(parent.trace_id) if s.parent_span_id == parent.span_id]

    def metrics_named(self, name: str) -> list[ReceivedMetric]:
        return [m for m in self.metrics if m.name == name]

    def metric_points(self, name: str) -> list[ReceivedPoint]:
        """Every data point received for ``name`` (cumulative: a later point of a series includes earlier ones)."""
        return [point for metric in self.metrics_named(name) for point in metric.points]

    # --- a slow collector
    def stall(self) -> None:
        """Hold every export request (both transports) until ``resume()`` or ``stop()``."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    # --- the two transports
    def _accept(self, spans=(), metrics=()) -> None:
        self._flowing.wait(_STALL_LIMIT)
        with self._lock:
            self._spans.extend(spans)
            self._metrics.extend(metrics)

    def start(self) -> OtlpReceiver:
        self._flowing.set()
        self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._grpc_server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self), self._grpc_server)
        grpc_port = self._grpc_server.add_insecure_port("127.0.0.1:0")
        self._grpc_server.start()
        self.grpc_endpoint = f"http://127.0.0.1:{grpc_port}"

        self._http_server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self))
        self._http_server.daemon_threads = True
        threading.Thread(target=self._http_server.serve_forever, name="otlp-http", daemon=True).start()
        self.http_endpoint = f"http://127.0.0.1:{self._http_server.server_address[1]}"
        return self

    def stop(self) -> None:
        self._flowing.set()
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()

    def endpoint_for(self, protocol: str) -> str:
        """The endpoint for ``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``grpc`` or ``http/protobuf``."""
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver):
        self.receiver = receiver

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        self.receiver._accept(spans=decode_spans(request, transport="grpc"))
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver):
        self.receiver = receiver

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        self.receiver._accept(metrics=decode_metrics(request, transport="grpc"))
        return metrics_service_pb2.ExportMetricsServiceResponse()


def _http_handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class OtlpHttpHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real collector

        def do_POST(self):  # noqa: N802 (http.server method name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/x-protobuf":
                return self._reply(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"")
            if self.path == "/v1/traces":
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                receiver._accept(spans=decode_spans(request, transport="http"))
                response = trace_service_pb2.ExportTraceServiceResponse()
            elif self.path == "/v1/metrics":
                request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
                receiver._accept(metrics=decode_metrics(request, transport="http"))
                response = metrics_service_pb2.ExportMetricsServiceResponse()
            else:
                return self._reply(HTTPStatus.NOT_FOUND, b"")
            self._reply(HTTPStatus.OK, response.SerializeToString())

        def _reply(self, status: HTTPStatus, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002 (http.server signature)
            pass  # quiet: pytest shows failures, not every export

    return OtlpHttpHandler


@contextmanager
def running_otlp_receiver():
    receiver = OtlpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def otlp_receiver():
    """A running OTLP receiver (gRPC and HTTP on free 127.0.0.1 ports), stopped after the test."""
    with running_otlp_receiver() as receiver:
        yield receiver
