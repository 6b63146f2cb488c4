"""The built-in trace store's own cost, in-process: writing a checkout's spans (CPU and writer time).

The HTTP comparison (tracing on with the store on ÷ off, in ``perf/bench/run.py``) is the end-to-end figure,
but on a shared machine its noise can exceed the store's cost. This part measures the store's work
directly: spans shaped like a real checkout's (one CLIENT span per statement the checkout really runs,
with its SQL) written by the store's exporter in batches like its processor makes, timed in CPU and in
wall time of each batch's transaction (on SQLite the writer lock is held that long).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

BATCH = 512  # the BatchSpanProcessor's default export batch


@dataclass(frozen=True)
class StoreCost:
    spans_per_checkout: int
    spans: int
    cpu_us_per_span: float
    cpu_ms_per_checkout: float
    batch_ms_median: float  # wall time of one batch's write (transaction), 512 spans
    batch_ms_max: float


def checkout_shaped_spans(checkouts: int, statements: list[str]):
    """Finished spans of ``checkouts`` checkouts: server, create_order, 7 steps, one span per SQL statement."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from orders import tracing as names

    exporter = InMemorySpanExporter()
    disabled = os.environ.pop("OTEL_SDK_DISABLED", None)  # the bench process runs without tracing; not this one
    try:
        provider = TracerProvider(resource=Resource({"service.name": "mall"}))
    finally:
        if disabled is not None:
            os.environ["OTEL_SDK_DISABLED"] = disabled
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench.store")
    per_step = max(1, len(statements) // len(names.CHECKOUT_STEPS))
    for number in range(checkouts):
        order = {names.USER_ID: "1", names.ORDER_NO: f"20261201000000{number:012d}", names.ORDER_ID: number}
        with (
            tracer.start_as_current_span("POST api/orders/", kind=SpanKind.SERVER),
            tracer.start_as_current_span(names.CREATE_ORDER, attributes=order),
        ):
            for index, step in enumerate(names.CHECKOUT_STEPS):
                with tracer.start_as_current_span(step):
                    for sql in statements[index * per_step : (index + 1) * per_step]:
                        statement = {"db.system": "sqlite", "db.statement": sql}
                        tracer.start_span(sql.split()[0], kind=SpanKind.CLIENT, attributes=statement).end()
    provider.shutdown()
    return list(exporter.get_finished_spans())


def store_write_cost(*, checkouts: int, statements: list[str]) -> StoreCost:
    from traces.models import TraceSpan
    from traces.store import TraceStoreExporter

    spans = checkout_shaped_spans(checkouts, statements)
    exporter = TraceStoreExporter(retention=3600, max_spans=10_000_000)
    exporter.prune()  # the first export would prune: not part of the steady cost
    batches, cpu = [], 0.0
    for start in range(0, len(spans), BATCH):
        batch = spans[start : start + BATCH]
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        exporter.export(batch)
        batches.append(time.perf_counter() - wall_before)
        cpu += time.process_time() - cpu_before
    TraceSpan.objects.all().delete()
    per_checkout = len(spans) // checkouts
    return StoreCost(
        spans_per_checkout=per_checkout,
        spans=len(spans),
        cpu_us_per_span=cpu / len(spans) * 1e6,
        cpu_ms_per_checkout=cpu / len(spans) * per_checkout * 1000,
        batch_ms_median=statistics.median(batches) * 1000,
        batch_ms_max=max(batches) * 1000,
    )
