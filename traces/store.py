"""The built-in trace store: every finished span of this process, kept in the shop's database for a while.

A ``BatchSpanProcessor`` hands the spans to :class:`TraceStoreExporter` in its own thread, so a request
never waits for the store: the thread writes each batch in one short transaction of its own database
connection (Django's connections are per thread: never inside a checkout's transaction), with
instrumentation suppressed so the store does not trace its own writes. The store keeps itself
bounded at every moment (see :class:`TraceStoreExporter`). Read by the staff trace pages (``traces.pages``)
and the JSON API.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from mall.telemetry.names import ORDER_NO, REFUSAL_CODE

logger = logging.getLogger(__name__)

PRUNE_INTERVAL = 60.0  # seconds between two prunes of one process
SCHEDULE_DELAY_MILLIS = 1000  # a trace shows up in the view about a second after it ended
MAX_ATTRIBUTE_LENGTH = 4000  # characters of one string attribute (long SQL statements)
PRUNE_CHUNK = 1000  # the most rows one statement of a prune deletes
PRUNE_FIRST_CHUNK = 100  # rows of a prune's first statement, before it knows how fast this database deletes
PRUNE_MIN_CHUNK = 20  # the fewest rows one statement deletes, however slow the database is
PRUNE_CHUNK_SECONDS = 0.01  # the time one statement of a prune aims to hold the lock (chunks sized to it)
PRUNE_PAUSE = 0.005  # seconds between two chunks of a prune
# SQLite: a writer waiting for the database polls it 1, 2, 5, 10, 15, 20 ms... apart (its busy handler's
# schedule, at most 25 ms apart in the first 100 ms of a wait), so a gap this long between two chunks is
# always seen by a checkout that began to wait during the chunk before it.
SQLITE_PRUNE_PAUSE = 0.03
LOCK_WAIT_SECONDS = 2  # the longest a write of the store waits for a lock
RETRY_INTERVAL = 5.0  # seconds a failing store drops batches before it tries the database again
SHUTDOWN_TIMEOUT = 3  # seconds a stopping process waits for the store's last export
DROPPED_SPANS_METRIC = "mall.trace_store.dropped_spans"


def _value(value):
    if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_LENGTH:
        return value[:MAX_ATTRIBUTE_LENGTH] + "…"
    return list(value) if isinstance(value, tuple) else value


def _attributes(attributes) -> dict:
    return {key: _value(value) for key, value in (attributes or {}).items()}


# The columns a span fills, in the order of ``span_row``'s values.
COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "entry", "name", "kind", "service", "start_ns", "duration_ns", "error",
    "order_no", "linked_trace_id", "detail", "refusal_code", "outcome",
)  # fmt: skip
_ENTRY, _ERROR, _REFUSAL, _OUTCOME = 3, 9, 13, 14  # positions in a row
MAX_PENDING_TRACES = 20_000  # traces whose failed or refused spans wait for their entry span (bounded memory)


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
        str(attributes.get(REFUSAL_CODE, ""))[:40],
        "",  # the outcome: set by ``TraceOutcomes`` on entry rows
    )


class TraceOutcomes:
    """Gives each entry row the outcome of its process's part of the trace: error, refusal or ok.

    An entry span ends after the spans under it, so they were handed over in its batch or an earlier
    one: the failed or refused ones are remembered by trace (at most ``MAX_PENDING_TRACES`` traces, the
    oldest forgotten first) until the entry comes. Spans ending after their entry (rare) do not change it.
    """

    def __init__(self, limit: int = MAX_PENDING_TRACES):
        self.limit, self.pending = limit, {}

    def mark(self, rows: list[tuple]) -> list[tuple]:
        marked = []
        for row in rows:
            mark = "error" if row[_ERROR] else "refusal" if row[_REFUSAL] else ""
            trace_id = row[0]
            if row[_ENTRY]:
                earlier = self.pending.pop(trace_id, "")
                mark = "error" if "error" in (mark, earlier) else mark or earlier or "ok"
                row = row[:_OUTCOME] + (mark,) + row[_OUTCOME + 1 :]
            elif mark and self.pending.get(trace_id) != "error":
                self.pending[trace_id] = mark
                if len(self.pending) > self.limit:
                    del self.pending[next(iter(self.pending))]
            marked.append(row)
        return marked


def _insert_statement(connection) -> str:
    from traces.models import TraceSpan

    meta, quote = TraceSpan._meta, connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in COLUMNS)
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"


class TraceStoreExporter(SpanExporter):
    """Writes span batches to the ``TraceSpan`` table and keeps it bounded (``retention`` s, ``max_spans``).

    The bound holds after every batch, not only on the timer: after each write one cheap look at the
    newest id tells whether the rows written since this process's last prune could have taken the
    table past ``max_spans``; then it prunes at once, down to a low-water mark so that the next prune
    is a while away. When it must choose, it deletes the oldest spans of traces that touched no order
    (anonymous browsing, health checks) before any span of an order's trace.

    A batch that cannot be written is counted (``mall.trace_store.dropped_spans`` and, once the store
    works again, a ``DroppedSpans`` row for the staff view); the log names the error once per outage
    and says when it recovers. While failing, batches within ``retry_interval`` of the last failure are
    dropped without touching the database, and each write waits at most ``lock_wait`` seconds for a
    lock: a stuck store cannot hold up a flush or a shutdown.
    """

    def __init__(
        self,
        *,
        retention: float,
        max_spans: int,
        prune_interval: float = PRUNE_INTERVAL,
        chunk: int = PRUNE_CHUNK,
        lock_wait: int = LOCK_WAIT_SECONDS,
        retry_interval: float = RETRY_INTERVAL,
    ):
        self.retention, self.max_spans, self.prune_interval = retention, max_spans, prune_interval
        self.chunk, self.lock_wait, self.retry_interval = chunk, lock_wait, retry_interval
        self._next_prune = 0.0  # the first batch prunes: a process restarted often still keeps the bound
        self._prune_above_id: int | None = None  # a newest id above this may mean more than max_spans rows
        self._outage: _Outage | None = None
        self._dropped = _dropped_spans_counter()
        self._outcomes = TraceOutcomes()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from django.db import DatabaseError, connection, transaction
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        rows = self._outcomes.mark([span_row(span) for span in spans])
        outage = self._outage
        if outage is not None and time.monotonic() < outage.retry_at:
            self._drop(len(rows), None)
            return SpanExportResult.FAILURE
        try:
            with suppress_instrumentation():
                connection.close_if_unusable_or_obsolete()  # this thread's connection: as a request would
                # One executemany (MySQLdb sends one multi-row INSERT) in one short transaction: Django's
                # bulk_create would spend most of the store's CPU preparing each field of each row.
                with connection.cursor() as cursor:  # before the transaction: SQLite's BEGIN takes the lock
                    _bound_lock_wait(cursor, connection.vendor, self.lock_wait)
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(_insert_statement(connection), rows)
                    if outage is not None:
                        _record_outage(outage)
                    cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(_table())}")
                    (newest,) = cursor.fetchone()
                if outage is not None:
                    self._outage = None
                    logger.warning(
                        "trace store: writing again; %s spans dropped since %s (%s)",
                        outage.count, outage.since.isoformat(timespec="seconds"), outage.error,
                    )  # fmt: skip
                if time.monotonic() >= self._next_prune or (
                    self._prune_above_id is None or (newest or 0) > self._prune_above_id
                ):
                    self.prune()
        except DatabaseError as exc:
            self._drop(len(rows), exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _drop(self, count: int, exc: Exception | None) -> None:
        """Count ``count`` spans as lost; log the error when an outage begins."""
        self._dropped.add(count)
        if self._outage is None:
            error = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"
            self._outage = _Outage(since=datetime.now(UTC), error=error[:500])
            logger.warning(
                "trace store: could not write %s spans (%s); dropping spans and counting them until it can "
                "(a missing table: run `manage.py migrate`)",
                count, error,
            )  # fmt: skip
        self._outage.count += count
        self._outage.retry_at = time.monotonic() + self.retry_interval

    def prune(self) -> int:
        """Delete spans past the retention, then the oldest beyond the low-water mark, in short chunks.

        Returns how many went. Each chunk is one short statement that holds the lock about
        ``PRUNE_CHUNK_SECONDS``, with a pause between two chunks, so a checkout waiting for the lock (SQLite's
        write lock) gets it between them: none waits more than 100 ms behind a prune.
        """
        from django.db import connection
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        from traces.models import DroppedSpans, TraceSpan

        self._next_prune = time.monotonic() + self.prune_interval
        keep = self.max_spans - self.max_spans // 10  # the low-water mark
        with suppress_instrumentation():
            cutoff = time.time_ns() - int(self.retention * 1e9)
            deleted = self._delete_chunks(TraceSpan.objects.filter(start_ns__lt=cutoff))
            DroppedSpans.objects.filter(until__lt=datetime.fromtimestamp(cutoff / 1e9, tz=UTC)).delete()
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(_table())}")
                (newest,) = cursor.fetchone()
            count = TraceSpan.objects.count()
            if count > keep:
                excess, order_traces = count - keep, TraceSpan.objects.exclude(order_no="").values("trace_id")
                gone = self._delete_chunks(TraceSpan.objects.exclude(trace_id__in=order_traces), limit=excess)
                if gone < excess:  # only orders' traces are left to choose from
                    gone += self._delete_chunks(TraceSpan.objects.all(), limit=excess - gone)
                deleted, count = deleted + gone, keep
        # Rows this process does not see deleted (another's prune) only lower the count.
        self._prune_above_id = (newest or 0) + max(self.max_spans - count, 0)
        return deleted

    def _delete_chunks(self, spans, *, limit: int | None = None) -> int:
        """Delete the oldest of ``spans`` (all, or ``limit``) in short chunks, each one statement of its own.

        Each chunk is one DELETE by primary key in autocommit: the database's lock (SQLite's write lock,
        InnoDB's row locks) is taken and released inside that one call, with no Python in between that a
        garbage collection or another thread could stretch. Chunks are sized to hold the lock about
        ``PRUNE_CHUNK_SECONDS``: fewer rows when the machine is slow, up to ``chunk`` when it is fast.
        """
        from django.db import connection

        pause = SQLITE_PRUNE_PAUSE if connection.vendor == "sqlite" else PRUNE_PAUSE
        table, pk = connection.ops.quote_name(_table()), connection.ops.quote_name("id")
        size, deleted = min(self.chunk, PRUNE_FIRST_CHUNK), 0
        while limit is None or deleted < limit:
            take = size if limit is None else min(size, limit - deleted)
            # Ids first (a read: no lock), then a delete by id: MariaDB cannot delete from a table its
            # subquery reads, and the ids in order keep InnoDB's locks on those rows alone.
            ids = list(spans.order_by("id").values_list("id", flat=True)[:take])
            if not ids:
                break
            with connection.cursor() as cursor:
                began = time.perf_counter()
                cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(['%s'] * len(ids))})", ids)
                held = time.perf_counter() - began
                deleted += cursor.rowcount
                if connection.vendor == "sqlite":  # its pages written back by the prune, not by a checkout's commit
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            # The next chunk sized to the time budget: at most twice or half this one's size.
            fitting = int(len(ids) * PRUNE_CHUNK_SECONDS / max(held, 1e-4))
            size = max(min(self.chunk, PRUNE_MIN_CHUNK), min(self.chunk, len(ids) * 2, max(len(ids) // 2, fitting)))
            time.sleep(pause)  # not synchronisation: lets a waiting writer take the lock
        return deleted

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass
class _Outage:
    since: datetime
    error: str
    count: int = 0
    retry_at: float = 0.0


def _record_outage(outage: _Outage) -> None:
    from traces.models import DroppedSpans

    DroppedSpans.objects.create(
        since=outage.since, until=datetime.now(UTC), count=outage.count, error=outage.error, pid=os.getpid()
    )


def _table() -> str:
    from traces.models import TraceSpan

    return TraceSpan._meta.db_table


def _bound_lock_wait(cursor, vendor: str, seconds: int) -> None:
    """Make this connection wait at most ``seconds`` for a lock (a table locked by another session)."""
    if vendor == "mysql":
        cursor.execute(f"SET SESSION lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}")
    elif vendor == "sqlite":
        cursor.execute(f"PRAGMA busy_timeout = {seconds * 1000}")


def _dropped_spans_counter():
    from opentelemetry import metrics

    return metrics.get_meter("mall.traces").create_counter(
        DROPPED_SPANS_METRIC, unit="{span}", description="Spans the built-in trace store could not write"
    )


class TraceStoreProcessor(BatchSpanProcessor):
    """The store's batching processor, whose shutdown waits at most ``SHUTDOWN_TIMEOUT`` seconds.

    The SDK's own waits up to 30 s for its export thread; a process stopping with a stuck store
    must not wait that long (its unsent spans are lost either way).
    """

    def shutdown(self) -> None:
        stopping = threading.Thread(target=super().shutdown, name="mall-trace-store-shutdown", daemon=True)
        stopping.start()
        stopping.join(SHUTDOWN_TIMEOUT)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        return super().force_flush(min(timeout_millis or SHUTDOWN_TIMEOUT * 1000, SHUTDOWN_TIMEOUT * 1000))


def trace_store_processor() -> BatchSpanProcessor:
    """The span processor of the store, bounded by ``MALL_TRACE_STORE_RETENTION`` / ``_MAX_SPANS``."""
    from django.conf import settings

    exporter = TraceStoreExporter(
        retention=settings.MALL_TRACE_STORE_RETENTION, max_spans=settings.MALL_TRACE_STORE_MAX_SPANS
    )
    return TraceStoreProcessor(exporter, schedule_delay_millis=SCHEDULE_DELAY_MILLIS)
