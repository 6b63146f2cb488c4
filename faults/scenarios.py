"""Guided diagnosis scenarios: faults set, load run, what to look at, faults cleared (``manage.py scenario``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faults.services import clear_faults, set_fault

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


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="slow-step",
            summary="query_inv +200 ms for 30 % of checkouts",
            faults=(FaultSpec("query_inv", "delay", milliseconds=200, rate=30),),
            look_at=(
                "/admin/traces/monitor/  query_inv's p95 jumps to over 200 ms while its p50 stays low",
                "/admin/traces/?operation=query_inv  sort by duration: the slow ones carry the event mall.fault "
                "(mall.fault.kind=delay, mall.fault.milliseconds=200)",
            ),
        ),
        Scenario(
            name="failing-share",
            summary="10 % of save_order steps fail",
            faults=(FaultSpec("save_order", "error", rate=10),),
            look_at=(
                "/admin/traces/?operation=create_order&status=error  the failed checkouts: 503 checkout_fault_injected",
                "a failed trace: save_order is red with the event mall.fault (kind error); no order row was written "
                "for it (the order number is absent from the admin's orders)",
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
                "/admin/traces/?operation=query_inv  the waiting buyers' query_inv spans last the hold and more: "
                "their UPDATE of the stock row waited for the holder's commit (MariaDB row locks)",
            ),
        ),
        Scenario(
            name="collector-outage",
            summary="the collector is stopped (docker compose stop jaeger) while the load runs",
            faults=(),
            look_at=(
                "the figures above: every order placed, latency as usual: export never makes a checkout wait",
                "the shop's log: the exporter's connection errors; spans the full queue drops are counted as dropped "
                "(OTEL_BSP_MAX_QUEUE_SIZE); start the collector again (docker compose start jaeger)",
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
    say: Callable[[str], None] = print,
) -> list[LoadSummary]:
    """Set the scenario's faults, run its load (twice for a baseline), clear its faults (also on Ctrl-C)."""
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
        if scenario.baseline_first:
            summaries.append(load("before (no fault)"))
        for fault in scenario.faults:
            set_fault(step=fault.step, kind=fault.kind, milliseconds=fault.milliseconds, rate=fault.rate)
            say(f"fault set: {fault.step} {fault.kind}" + (f" {fault.milliseconds} ms" if fault.milliseconds else ""))
        summaries.append(load("with the fault" if scenario.faults else "load"))
    finally:
        for fault in scenario.faults:
            clear_faults(step=fault.step)
        if scenario.faults:
            say("faults cleared")
        shop.finish()
    say("Where to look (the built-in view, staff login):")
    for hint in scenario.look_at:
        say(f"  {hint}")
    return summaries
