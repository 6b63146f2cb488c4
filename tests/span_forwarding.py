"""Send the test process's spans to one more span processor for the length of a test.

The process-wide tracer provider is set up once (conftest) and processors cannot be removed from it,
so one forwarding processor is added once; a test sets what it forwards to (a real OTLP exporter
aimed at the in-process receiver, the trace store's batching processor) and it is unset afterwards.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

_lock = threading.Lock()


class _Forwarding(SpanProcessor):
    target: SpanProcessor | None = None

    def on_start(self, span, parent_context=None):
        target = self.target
        if target is not None:
            target.on_start(span, parent_context=parent_context)

    def on_end(self, span):
        target = self.target
        if target is not None:
            target.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        target = self.target
        return target.force_flush(timeout_millis) if target is not None else True


_forwarding: _Forwarding | None = None


@contextmanager
def spans_also_to(processor: SpanProcessor):
    """Every span ended in this process during the block also goes to ``processor`` (shut down at the end)."""
    global _forwarding
    with _lock:
        if _forwarding is None:
            _forwarding = _Forwarding()
            trace.get_tracer_provider().add_span_processor(_forwarding)
    _forwarding.target = processor
    try:
        yield processor
    finally:
        _forwarding.target = None
        processor.shutdown()


def otlp_to(receiver):
    """A processor exporting each span at once over OTLP/gRPC to the in-process receiver."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    return SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True))
