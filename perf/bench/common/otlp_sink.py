"""Count the spans the shop exports, in-process: the bench's OTLP sink.

``OtlpSink`` does the least a collector must (parse each request to count its spans) so that the shop's
export cost is measured, not the receiver's. The two transports are ``harness.otlp.OtlpServer``'s.
"""

from __future__ import annotations

import threading

from harness.otlp import OtlpServer, TraceRequest


def count_spans(request: TraceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


class OtlpSink(OtlpServer):
    """The bench's receiver: ``spans`` counts the spans that arrived, ``export_requests`` the trace exports."""

    def __init__(self) -> None:
        super().__init__(on_traces=self._count, on_metrics=lambda request, transport: None)
        self._lock = threading.Lock()
        self.spans = 0
        self.export_requests = 0

    def _count(self, request: TraceRequest, transport: str) -> None:
        spans = count_spans(request)
        with self._lock:
            self.spans += spans
            self.export_requests += 1
