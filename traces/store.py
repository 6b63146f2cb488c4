"""The built-in trace store: every finished span of this process, kept in the shop's database for a while.

A ``BatchSpanProcessor`` hands the spans to :class:`TraceStoreExporter` in its own thread, so a request
never waits for the store: the thread writes each batch in one short transaction of its own database
connection (Django's connections are per thread: never inside a checkout's transaction), with
instrumentation suppressed so the store does not trace its own writes. The store keeps itself
bounded: at most once a minute it deletes spans older than the retention and the oldest beyond the
maximum count. Read by the staff trace view (``traces.views``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from mall.telemetry.names import ORDER_NO

logger = logging.getLogger(__name__)

PRUNE_INTERVAL = 60.0  # seconds between two prunes of one process
SCHEDULE_DELAY_MILLIS = 1000  # a trace shows up in the view about a second after it ended
MAX_ATTRIBUTE_LENGTH = 4000  # characters of one string attribute (long SQL statements)


def _value(value):
    if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_LENGTH:
        return value[:MAX_ATTRIBUTE_LENGTH] + "…"
    return list(value) if isinstance(value, tuple) else value


def _attributes(attributes) -> dict:
    return {key: _value(value) for key, value in (attributes or {}).items()}


# The columns a span fills, in the order of ``span_row``'s values.
COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "entry", "name", "kind", "service", "start_ns", "duration_ns", "error",
    "order_no", "linked_trace_id", "detail",
)  # fmt: skip


def span_row(span: ReadableSpan) -> tuple:
    """The ``TraceSpan`` column values of a finished span (``COLUMNS``); ``detail`` as JSON text."""
    context, parent = span.context, span.parent
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    attributes = span.attributes or {}
    links = [
        {
            "trace_id": format(link.context.trace_id, "032x"),
            "span_id": format(link.context.span_id, "016x"),
            "attributes": _attributes(link.attributes),
        }
        for link in span.links
    ]
    detail = {
        "attributes": _attributes(attributes),
        "events": [
            {"name": event.name, "offset_ns": event.timestamp - start, "attributes": _attributes(event.attributes)}
            for event in span.events
        ],
        "links": links,
        "status": span.status.description or "",
    }
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        format(parent.span_id, "016x") if parent is not None else "",
        parent is None or parent.is_remote,
        span.name[:200],
        span.kind.name,
        str(span.resource.attributes.get("service.name", ""))[:100],
        start,
        max(end - start, 0),
        span.status.status_code is StatusCode.ERROR,
        str(attributes.get(ORDER_NO, ""))[:40],
        links[0]["trace_id"] if links else "",
        json.dumps(detail, default=str),
    )


def _insert_statement(connection) -> str:
    from traces.models import TraceSpan

    meta, quote = TraceSpan._meta, connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in COLUMNS)
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"


class TraceStoreExporter(SpanExporter):
    """Writes span batches to the ``TraceSpan`` table and keeps it bounded (``retention`` s, ``max_spans``)."""

    def __init__(self, *, retention: float, max_spans: int, prune_interval: float = PRUNE_INTERVAL):
        self.retention, self.max_spans, self.prune_interval = retention, max_spans, prune_interval
        self._next_prune = 0.0  # the first batch prunes: a process restarted often still keeps the bound
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from django.db import DatabaseError, connection, transaction
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        rows = [span_row(span) for span in spans]
        try:
            with suppress_instrumentation():
                connection.close_if_unusable_or_obsolete()  # this thread's connection: as a request would
                # One executemany (MySQLdb sends one multi-row INSERT) in one short transaction: Django's
                # bulk_create would spend most of the store's CPU preparing each field of each row.
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(_insert_statement(connection), rows)
                if time.monotonic() >= self._next_prune:
                    self.prune()
        except DatabaseError as exc:
            if not self._failing:  # once until it works again, not once per batch
                logger.warning("trace store: could not write %s spans (%s); is the database migrated?", len(rows), exc)
            self._failing = True
            return SpanExportResult.FAILURE
        self._failing = False
        return SpanExportResult.SUCCESS

    def prune(self) -> int:
        """Delete spans past the retention and the oldest beyond ``max_spans``; returns how many went."""
        from django.db import transaction
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        from traces.models import TraceSpan

        self._next_prune = time.monotonic() + self.prune_interval
        with suppress_instrumentation(), transaction.atomic():
            deleted, _ = TraceSpan.objects.filter(start_ns__lt=time.time_ns() - int(self.retention * 1e9)).delete()
            newest = TraceSpan.objects.order_by("-id").values_list("id", flat=True).first()
            if newest is not None and newest > self.max_spans:
                beyond, _ = TraceSpan.objects.filter(id__lte=newest - self.max_spans).delete()
                deleted += beyond
        return deleted

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def trace_store_processor() -> BatchSpanProcessor:
    """The span processor of the store, bounded by ``MALL_TRACE_STORE_RETENTION`` / ``_MAX_SPANS``."""
    from django.conf import settings

    exporter = TraceStoreExporter(
        retention=settings.MALL_TRACE_STORE_RETENTION, max_spans=settings.MALL_TRACE_STORE_MAX_SPANS
    )
    return BatchSpanProcessor(exporter, schedule_delay_millis=SCHEDULE_DELAY_MILLIS)
