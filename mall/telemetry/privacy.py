"""Personal data kept out of every exported and stored span unless ``MALL_TRACE_PERSONAL_DATA`` opts in.

The HTTP and gRPC instrumentations record who asked (client address and port, User-Agent) and the
full URL with its query string (which may carry a token or a search someone typed); none of it is
needed to follow an order. Ended spans are read-only and the Django instrumentation sets these
attributes after the span started (past any sampler), so one processor in front of all the others
hands each of them a copy of the span without those attributes: the same for the built-in store
and any OTLP or console exporter.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

# Who asked: old and stable semantic-convention names.
PERSONAL_ATTRIBUTES = frozenset(
    {
        "http.client_ip",
        "client.address",
        "client.port",
        "net.peer.ip",
        "net.peer.port",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "network.peer.address",
        "network.peer.port",
        "http.user_agent",
        "user_agent.original",
        "url.query",
    }
)
# A URL or target whose query string is cut off (the path stays).
URL_ATTRIBUTES = frozenset({"http.target", "http.url", "url.full"})


def _cut_query(value):
    return value.split("?", 1)[0] if isinstance(value, str) else value


def without_personal_data(span: ReadableSpan) -> ReadableSpan:
    """Return ``span``, or a copy of it without client address, User-Agent and query-string values."""
    attributes = span.attributes or {}
    if not any(
        key in PERSONAL_ATTRIBUTES or (key in URL_ATTRIBUTES and "?" in str(value)) for key, value in attributes.items()
    ):
        return span
    kept = {
        key: _cut_query(value) if key in URL_ATTRIBUTES else value
        for key, value in attributes.items()
        if key not in PERSONAL_ATTRIBUTES
    }
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=kept,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class WithoutPersonalData(SpanProcessor):
    """Hands ``processors`` each ended span without personal data (``without_personal_data``)."""

    def __init__(self, processors: list[SpanProcessor]):
        self._processors = tuple(processors)

    def on_start(self, span, parent_context=None) -> None:
        for processor in self._processors:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        span = without_personal_data(span)
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self._processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self._processors)
