"""The fault soak's end: wait for the due orders to close, check what the database holds, print the figures."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from perf.loadgen.stats import percentile

DRAIN_MARGIN = 150  # seconds past the pay timeout: scheduler pass (~30 s) + a sweep minute + restarts


def overdue_pending():
    from django.db import connections
    from django.utils import timezone

    from orders.models import Order

    connections.close_all()  # a fresh snapshot each time
    return Order.objects.filter(status=Order.Status.PENDING, expires_at__lte=timezone.now())


def drain(pay_timeout: int) -> float:
    """Wait until every due order is closed (bounded); the seconds it took."""
    began = time.monotonic()
    deadline = began + pay_timeout + DRAIN_MARGIN
    print("traffic over; waiting for the due orders to close", flush=True)
    while time.monotonic() < deadline:
        if not overdue_pending().exists():
            break
        time.sleep(1)
    return time.monotonic() - began


def _in_outage(moment: float, outages) -> bool:
    return any(start <= moment <= end for start, end, _ in outages)


def verdict(args, shop, seen, goods_ids: list[int], stock_per_goods: int) -> int:
    from django.db.models import Count, Sum
    from django.utils import timezone

    from inventory.models import Stock
    from orders.invariants import check_invariants
    from orders.models import Order, OrderLine

    failures = []
    outage_errors = [label for moment, label in seen.errors if _in_outage(moment, shop.outages)]
    other_errors = [label for moment, label in seen.errors if not _in_outage(moment, shop.outages)]
    if other_errors:
        failures.append(
            f"{len(other_errors)} 5xx/transport errors outside injected outages: {sorted(set(other_errors))}"
        )

    problems = check_invariants()
    failures += [f"invariant: {problem}" for problem in problems[:20]]
    by_status = {row["status"]: row["n"] for row in Order.objects.values("status").annotate(n=Count("id"))}
    overdue = list(overdue_pending().values_list("order_no", flat=True)[:10])
    if overdue:
        failures.append(f"pending orders past their deadline after the drain: {overdue}")
    statuses = dict(Order.objects.filter(pk__in=seen.placed).values_list("pk", "status"))
    lost = seen.placed - statuses.keys()
    if lost:
        failures.append(f"{len(lost)} orders answered 201 are missing")
    wrong = [
        (order_id, expected, statuses.get(order_id))
        for ids, expected in ((seen.paid, "paid"), (seen.cancelled, "cancelled"))
        for order_id in ids
        if statuses.get(order_id) != expected
    ] + [(order_id, "closed", statuses.get(order_id)) for order_id in seen.left if statuses.get(order_id) == "paid"]
    if wrong:
        failures.append(f"confirmed outcomes that did not stick: {wrong[:10]}")

    now = timezone.now()
    closed = Order.objects.filter(status=Order.Status.CLOSED)
    lags = [(ended - expires).total_seconds() for ended, expires in closed.values_list("ended_at", "expires_at")]
    held = (
        OrderLine.objects.filter(order__status__in=[Order.Status.PENDING, Order.Status.PAID]).aggregate(
            units=Sum("nums")
        )["units"]
        or 0
    )
    in_stock = Stock.objects.filter(goods_id__in=goods_ids).aggregate(units=Sum("quantity"))["units"] or 0
    stock_lost = stock_per_goods * len(goods_ids) - in_stock - held
    if stock_lost:
        failures.append(f"stock units lost: {stock_lost}")
    not_due = Order.objects.filter(status=Order.Status.PENDING, expires_at__gt=now).count()

    restarts = {p.name: p.unplanned_exits for p in shop.processes() if p.unplanned_exits}
    quiet = sorted(took for moment, took in seen.checkouts if not _in_outage(moment, shop.faults))
    collector_away = {
        mode: sorted(
            took
            for moment, took in seen.checkouts
            if _in_outage(moment, [w for w in shop.collector_windows if w[2] == mode])
        )
        for mode in ("refuse", "hang")
    }
    title = f"{args.minutes:g} min of traffic, {args.clients} clients, ORDER_PAY_TIMEOUT={args.pay_timeout} s"
    lines = [
        f"## Fault soak: {title}",
        "",
        "Faults injected (seconds from the start of traffic):",
        "",
        *[f"    {line}" for line in shop.injected],
        "",
        "| requests by outcome | count |",
        "| --- | ---: |",
        *[f"| {label} | {count} |" for label, count in sorted(seen.statuses.items())],
        f"| 5xx / transport errors during injected outages (counted apart) | {len(outage_errors)} |",
        f"| 5xx / transport errors outside them (failures) | {len(other_errors)} |",
        "",
        "| orders | count |",
        "| --- | ---: |",
        f"| placed (answered 201) | {len(seen.placed)} |",
        *[f"| {status} | {by_status.get(status, 0)} |" for status in ("paid", "cancelled", "closed", "pending")],
        f"| pending and not yet due | {not_due} |",
        "",
        f"- largest close lag after a deadline: {max(lags, default=0):.1f} s"
        f" (median {statistics.median(lags) if lags else 0:.1f} s over {len(lags)} closes)",
        "",
        "| checkout latency (201s) | n | p50 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        _latency_row("no fault under way", quiet),
        _latency_row("collector refusing", collector_away["refuse"]),
        _latency_row("collector hanging", collector_away["hang"]),
        "",
        f"- stock units lost: {stock_lost}",
        f"- invariant problems: {len(problems)}",
        f"- spans received by the collector: {shop.sink.spans}",
        f"- unplanned process exits (restarted by the soak's supervisor): {restarts or 'none'}",
        f"- verdict: {'FAILED' if failures else 'passed'}",
    ]
    report = "\n".join(lines)
    print("\n" + report)
    for failure in failures:
        print(f"FAILURE: {failure}")
    if args.report:
        Path(args.report).write_text(report + "\n")
    return 1 if failures else 0


def _latency_row(label: str, seconds: list[float]) -> str:
    ms = [percentile(seconds, 0.5, default=0.0) * 1000, percentile(seconds, 0.99, default=0.0) * 1000]
    ms.append(max(seconds, default=0) * 1000)
    return f"| {label} | {len(seconds)} | " + " | ".join(f"{value:.0f}" for value in ms) + " |"
