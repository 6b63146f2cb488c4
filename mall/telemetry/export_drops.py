"""Count the spans the export to the collector loses: a full batch queue, and exports that fail.

With the collector away (stopped, unreachable) the shop keeps answering: the batch processor queues
finished spans (``OTEL_BSP_MAX_QUEUE_SIZE``) and drops the oldest when the queue is full, and each export
gives up after ``OTEL_EXPORTER_OTLP_TIMEOUT``, losing its batch. Both are counted here, by reason
(``queue_full``, ``export_failed``), in the metric ``mall.telemetry.spans.dropped`` and in this process's
tally (``dropped_spans``); the log says once when an outage begins and once when export works again.
The built-in trace store counts its own losses apart (``mall.trace_store.dropped_spans``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence

from opentelemetry import metrics
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)

DROPPED_SPANS_METRIC = "mall.telemetry.spans.dropped"
QUEUE_FULL = "queue_full"
EXPORT_FAILED = "export_failed"

_lock = threading.Lock()
_tally: Counter[str] = Counter()
_counter = None


def dropped_spans() -> dict[str, int]:
    """Return the spans this process's exports lost so far, by reason (``queue_full``, ``export_failed``)."""
    with _lock:
        return dict(_tally)


def _count(count: int, reason: str) -> None:
    global _counter
    with _lock:
        _tally[reason] += count
        if _counter is None:
            _counter = metrics.get_meter("mall.telemetry").create_counter(
                DROPPED_SPANS_METRIC, unit="{span}", description="Spans lost on the way to the collector"
            )
    _counter.add(count, {"reason": reason})


class DropCountingExporter(SpanExporter):
    """``delegate`` whose failed exports are counted as dropped spans (``export_failed``)."""

    def __init__(self, delegate: SpanExporter):
        self.delegate = delegate
        self.exported = 0  # spans this exporter delivered
        self._failing_since_drops: int | None = None  # the tally's sum when the outage began

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.delegate.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
            logger.debug("span export raised", exc_info=True)
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
            if self._failing_since_drops is not None:
                lost = sum(dropped_spans().values()) - self._failing_since_drops
                self._failing_since_drops = None
                logger.warning("span export: the collector answers again; %s spans dropped meanwhile", lost)
            return result
        if self._failing_since_drops is None:
            self._failing_since_drops = sum(dropped_spans().values())
            logger.warning(
                "span export: the collector does not answer; dropping spans and counting them (%s) until it does",
                DROPPED_SPANS_METRIC,
            )
        _count(len(spans), EXPORT_FAILED)
        return result

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)


class _CountingProcessorMetrics:
    """The batch processor's own drop reports (``drop_items``), counted here too, then passed on."""

    def __init__(self, delegate):
        self._delegate = delegate

    def drop_items(self, count: int, error_type: str = QUEUE_FULL) -> None:
        _count(count, error_type)
        self._delegate.drop_items(count, error_type)

    def __getattr__(self, name):
        return getattr(self._delegate, name)


def drop_counting_processor(exporter: SpanExporter, **options) -> BatchSpanProcessor:
    """A ``BatchSpanProcessor`` (``options`` as its own) to ``exporter``, whose lost spans are counted.

    The queue's drops are reported by the SDK's batch processor to its internal metrics object only
    (SDK 1.45: ``BatchProcessor._metrics.drop_items``); that object is wrapped here. Should a later SDK
    move it, only the queue's drops go uncounted: the failed exports still are.
    """
    processor = BatchSpanProcessor(DropCountingExporter(exporter), **options)
    batching = getattr(processor, "_batch_processor", None)
    if batching is not None and hasattr(getattr(batching, "_metrics", None), "drop_items"):
        batching._metrics = _CountingProcessorMetrics(batching._metrics)
    return processor
