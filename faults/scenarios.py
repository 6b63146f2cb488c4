"""Guided diagnosis scenarios: faults set, load run, what to look at, faults cleared (``manage.py scenario``)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from faults.services import clear_faults, set_fault
from mall.telemetry.export_drops import (
    DROPPED_SPANS_METRIC,
    EXPORT_FAILED,
    QUEUE_FULL,
    drop_counting_processor,
    dropped_spans,
)
from mall.telemetry.privacy import WithoutPersonalData

# The load generator, imported here only: this module is one of the lab's doors (tests/tooling/test_architecture.py).
from perf.loadgen.http_client import HttpShop
from perf.loadgen.in_process import InProcessShop
from perf.loadgen.plan import plan_orders
from perf.loadgen.runner import run_orders
from perf.loadgen.shop import LoadSetupError
from perf.loadgen.summary import LoadSummary


@dataclass(frozen=True)
class FaultSpec:
    step: str
    kind: str
    milliseconds: int = 0
    rate: int = 100


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    faults: tuple[FaultSpec, ...]
    look_at: tuple[str, ...]
    one_goods: bool = False  # every order buys the same goods: a hot item
    baseline_first: bool = False  # a run without the faults first, to compare throughput and p99
    lines: int = 2
    outage: bool = False  # in-process: spans exported to a collector that is not there, then to one back


SHOP_URL = "http://127.0.0.1:8000"  # where `make run` serves the shop: the links of an in-process run

SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="slow-step",
            summary="query_inv +200 ms for 30 % of checkouts",
            faults=(FaultSpec("query_inv", "delay", milliseconds=200, rate=30),),
            look_at=(
                "{base}/admin/traces/monitor/  query_inv's p95 is over 200 ms while its p50 stays low",
                "{base}/admin/traces/?operation=query_inv&sort=duration  the slowest first: about 30 % of the "
                "checkouts, their query_inv over 200 ms with the event mall.fault (kind delay, milliseconds 200)",
                "{base}/api/traces/operations/  the same figures as JSON (p50_ms, p95_ms of query_inv)",
            ),
        ),
        Scenario(
            name="failing-share",
            summary="10 % of save_order steps fail",
            faults=(FaultSpec("save_order", "error", rate=10),),
            look_at=(
                "{base}/admin/traces/?operation=create_order&outcome=error  the failed checkouts, about 10 %: "
                "503 checkout_fault_injected",
                "a failed trace: save_order is red with the event mall.fault (kind error); no order row was written "
                "for it (its create_order span names no order number: nothing in the admin's orders)",
                "{base}/api/traces/?operation=save_order&outcome=error  the same traces as JSON",
            ),
        ),
        Scenario(
            name="hot-item",
            summary="every buyer takes the same goods; query_inv holds its stock row lock 100 ms longer",
            faults=(FaultSpec("query_inv", "hold", milliseconds=100),),
            one_goods=True,
            baseline_first=True,
            lines=1,
            look_at=(
                "the figures above: throughput falls and p99 rises against the baseline run",
                "{base}/admin/traces/?operation=query_inv&sort=duration  the waiting buyers' query_inv spans last "
                "longer than the holders' own work: their UPDATE of the stock row waited for the holder's commit "
                "(MariaDB row locks; SQLite: the whole database's write lock)",
                "{base}/admin/traces/monitor/  query_inv's p99 against its p50",
            ),
        ),
        Scenario(
            name="collector-outage",
            summary="the collector is away while the load runs, then comes back",
            faults=(),
            outage=True,
            look_at=(
                "the figures above: every order placed while the collector was away: export never makes a "
                "checkout wait; the spans it could not send are counted (metric mall.telemetry.spans.dropped, "
                "by reason queue_full / export_failed) and the shop's log says when it began and ended",
                "against a running shop (--url): docker compose stop jaeger, run the load, docker compose start "
                "jaeger; the shop's log: 'span export: the collector does not answer', then 'answers again; N "
                "spans dropped meanwhile'",
                "{base}/admin/traces/monitor/  the built-in store keeps every trace meanwhile (it needs no collector)",
            ),
        ),
    )
}


def run_scenario(
    scenario: Scenario,
    *,
    orders: int,
    concurrency: int,
    url: str = "",
    password: str = "",
    collector: str = "",
    say: Callable[[str], None] = print,
) -> list[LoadSummary]:
    """Set the scenario's faults, run its load (twice for a baseline), clear its faults (also on Ctrl-C).

    The collector outage, in-process: the load's spans go to an exporter whose collector is not there
    (their losses counted, ``mall.telemetry.export_drops``), then, with ``collector`` (an OTLP/gRPC
    endpoint), a second load's to that collector, "back".
    """
    try:
        shop = HttpShop(base_url=url, password=password) if url else InProcessShop()
        shoppers = shop.shoppers(max(concurrency, 1))
        goods_ids = shop.goods_in_stock()
    except LoadSetupError as exc:
        raise LookupError(str(exc)) from exc
    if not goods_ids:
        raise LookupError("no goods on sale with stock: run `manage.py seed_demo` (or seed_demo --restock)")
    if scenario.one_goods:
        goods_ids = goods_ids[:1]
    plans = plan_orders(count=orders, goods_ids=goods_ids, lines=scenario.lines, pay_ratio=0.0, seed=42)

    def load(label: str) -> LoadSummary:
        outcomes, elapsed = run_orders(shop=shop, shoppers=shoppers, plans=plans, concurrency=concurrency)
        summary = LoadSummary(
            mode=shop.mode, url=shop.base_url, seed=42, outcomes=outcomes, elapsed=elapsed, trace_url=lambda _: None
        )
        figures = summary.figures
        say(
            f"{label}: placed {figures['placed']} of {figures['orders']} in {figures['elapsed_s']} s "
            f"({figures['orders_per_s']} orders/s), failed {figures['failed']}, "
            f"not placed: {', '.join(f'{code} {count}' for code, count in figures['rejected'].items()) or 'none'}, "
            f"p50 {figures['latency_ms']['p50']} ms, p99 {figures['latency_ms']['p99']} ms"
        )
        return summary

    summaries = []
    try:
        if scenario.outage and not url:
            summaries.extend(_collector_outage(load, collector=collector, say=say))
        else:
            if scenario.baseline_first:
                summaries.append(load("before (no fault)"))
            for fault in scenario.faults:
                set_fault(step=fault.step, kind=fault.kind, milliseconds=fault.milliseconds, rate=fault.rate)
                milliseconds = f" {fault.milliseconds} ms" if fault.milliseconds else ""
                say(f"fault set: {fault.step} {fault.kind}{milliseconds}")
            summaries.append(load("with the fault" if scenario.faults else "load"))
    finally:
        for fault in scenario.faults:
            clear_faults(step=fault.step)
        if scenario.faults:
            say("faults cleared")
        shop.finish()
    say("Where to look (the built-in view, staff login):")
    for hint in scenario.look_at:
        say(f"  {hint.format(base=(url or SHOP_URL).rstrip('/'))}")
    return summaries


def _collector_outage(load: Callable[[str], LoadSummary], *, collector: str, say) -> list[LoadSummary]:
    """The load with the spans' collector away (counting what is lost), then back at ``collector`` if given."""
    tap = _export_tap()
    if tap is None:
        say("tracing is off in this process (OTEL_SDK_DISABLED?): no spans to lose")
        return [load("load")]
    before = dropped_spans()
    away = drop_counting_processor(
        _otlp_exporter(_nowhere(), timeout=1), max_queue_size=64, max_export_batch_size=32, schedule_delay_millis=100
    )
    tap.target = _as_the_shops_exporters(away)
    try:
        summaries = [load("collector away")]
    finally:
        tap.target = None
        away.shutdown()  # its last batches fail too, each within the exporter's 1 s timeout
    lost = {reason: count - before.get(reason, 0) for reason, count in dropped_spans().items()}
    say(
        f"spans dropped while the collector was away: {sum(lost.values())} "
        f"(queue full {lost.get(QUEUE_FULL, 0)}, failed exports {lost.get(EXPORT_FAILED, 0)}; "
        f"metric {DROPPED_SPANS_METRIC})"
    )
    if not collector:
        say("no --collector given: the recovery phase is left out (e.g. --collector http://127.0.0.1:4317)")
        return summaries
    back = drop_counting_processor(_otlp_exporter(collector, timeout=5), schedule_delay_millis=100)
    tap.target = _as_the_shops_exporters(back)
    try:
        summaries.append(load("collector back"))
    finally:
        tap.target = None
        back.shutdown()
    say(f"collector back at {collector}: {back.span_exporter.exported} spans exported")
    return summaries


class _ExportTap(SpanProcessor):
    """Installed once per process: hands finished spans to ``target`` while a scenario sets one."""

    target: SpanProcessor | None = None

    def on_end(self, span: ReadableSpan) -> None:
        target = self.target
        if target is not None:
            target.on_end(span)


_tap: _ExportTap | None = None


def _export_tap() -> _ExportTap | None:
    """The process's tap, added to its tracer provider on first use (inert while no scenario sets a target)."""
    global _tap
    provider = trace.get_tracer_provider()
    if _tap is None and hasattr(provider, "add_span_processor"):
        _tap = _ExportTap()
        provider.add_span_processor(_tap)
    return _tap


def _as_the_shops_exporters(processor: SpanProcessor) -> SpanProcessor:
    """``processor`` behind the personal-data policy: a collector gets none unless MALL_TRACE_PERSONAL_DATA."""
    return processor if settings.MALL_TRACE_PERSONAL_DATA else WithoutPersonalData([processor])


def _nowhere() -> str:
    """An endpoint where nothing listens: a free port of 127.0.0.1, released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _otlp_exporter(endpoint: str, *, timeout: float):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=timeout)
