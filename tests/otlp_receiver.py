"""An in-process OTLP receiver for tests: what the shop really puts on the wire, decoded.

It listens on both OTLP transports the shop can be configured with (gRPC and HTTP/protobuf, free ports of
127.0.0.1; ``harness.otlp.OtlpServer``) and decodes each export request with opentelemetry-proto into
simple records (:class:`ReceivedSpan`, :class:`ReceivedMetric`). ``stall()`` makes the receiver hold every
export request until ``resume()`` (a slow collector); ``stop()`` releases them.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from harness.otlp import OtlpServer

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
    bounds: tuple[float, ...] = ()  # explicit histograms: the bucket boundaries
    bucket_counts: tuple[int, ...] = ()  # explicit histograms: one more than the boundaries


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
                elif data_type == "histogram":
                    points = tuple(
                        ReceivedPoint(
                            decode_attributes(p.attributes),
                            None,
                            count=p.count,
                            sum=p.sum,
                            bounds=tuple(p.explicit_bounds),
                            bucket_counts=tuple(p.bucket_counts),
                        )
                        for p in data.data_points
                    )
                else:
                    points = tuple(
                        ReceivedPoint(decode_attributes(p.attributes), None, count=p.count, sum=p.sum)
                        for p in data.data_points
                    )
                received.append(ReceivedMetric(metric.name, metric.unit, data_type, points, resource, transport))
    return received


class OtlpReceiver(OtlpServer):
    """Collects what OTLP exporters send; ``grpc_endpoint`` / ``http_endpoint`` to point them at."""

    def __init__(self) -> None:
        super().__init__(on_traces=self._traces, on_metrics=self._metrics_in, grpc_workers=8)
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[ReceivedMetric] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()

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

    # --- what arrives
    def _traces(self, request, transport: str) -> None:
        self._accept(spans=decode_spans(request, transport=transport))

    def _metrics_in(self, request, transport: str) -> None:
        self._accept(metrics=decode_metrics(request, transport=transport))

    def _accept(self, spans=(), metrics=()) -> None:
        self._flowing.wait(_STALL_LIMIT)
        with self._lock:
            self._spans.extend(spans)
            self._metrics.extend(metrics)

    def start(self) -> OtlpReceiver:
        self._flowing.set()
        return super().start()

    def stop(self) -> None:
        self._flowing.set()  # a stalled export is answered: the exporter does not hang on a stopped receiver
        super().stop()


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
