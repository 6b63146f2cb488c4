"""The trace explorer's cost at the store's size limit: each search at 200,000 stored spans, and the store's writes.

``python -m perf explorer [--database-url URL] [--spans N] [--runs R]``: recreates the bench database,
seeds ``--spans`` spans shaped like the shop's traffic (checkouts with their seven steps and SQL,
payments, timeout closes, anonymous GETs, refusals, failures), then fetches each URL of ``CASES``
``--runs`` times through Django's test client as a user with the store's view permission (median and
max). Last, the store's write cost: checkout-shaped span batches written by the store's exporter into
the same full table, alternating between main's index set and this branch's (``index_sets``), with the
branch's columns on both (their cost is the store's Python work, measured in both).

To add a case, append a (label, URL) pair to ``CASES``; ``{order_no}``, ``{since}`` and ``{until}``
are filled from the seeded data.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from datetime import UTC, datetime

# (label, URL): fetched in this order.
CASES: list[tuple[str, str]] = [
    ("newest 20", "/api/traces/"),
    ("newest 500", "/api/traces/?limit=500"),
    ("slowest 20", "/api/traces/?sort=duration"),
    ("operation create_order", "/api/traces/?operation=create_order"),
    ("operation save_order, slowest", "/api/traces/?operation=save_order&sort=duration"),
    ("operation close_unpaid_order", "/api/traces/?operation=close_unpaid_order"),
    ("operation POST pay route", "/api/traces/?operation=POST+api/orders/{{pk}}/pay/"),
    ("operation unknown (scans all)", "/api/traces/?operation=no_such_operation"),
    ("order_no", "/api/traces/?order_no={order_no}"),
    ("outcome error", "/api/traces/?outcome=error"),
    ("outcome refusal", "/api/traces/?outcome=refusal"),
    ("outcome ok, slowest", "/api/traces/?outcome=ok&sort=duration"),
    ("min_duration_ms=250", "/api/traces/?min_duration_ms=250"),
    ("create_order >= 250 ms, slowest", "/api/traces/?operation=create_order&min_duration_ms=250&sort=duration"),
    ("window since/until", "/api/traces/?since={since}&until={until}"),
    ("refusal of query_inv in window, 500", "/api/traces/?outcome=refusal&operation=query_inv&since={since}&limit=500"),
    ("admin page (100, plot)", "/admin/traces/"),
    ("admin page create_order slowest", "/admin/traces/?operation=create_order&sort=duration"),
    # The monitor, and one trace explained (its spans against their operation's recent p95).
    ("operations, 15 min", "/api/traces/operations/?window=900"),
    ("operations, 1 h", "/api/traces/operations/"),
    ("operations, 24 h", "/api/traces/operations/?window=86400"),
    ("monitor page, 24 h", "/admin/traces/monitor/?window=86400"),
    ("one trace, JSON", "/api/traces/{trace}/"),
    ("one trace, page", "/admin/traces/{trace}/"),
]

SPAN_WINDOW_S = 6 * 3600  # seeded traces start over the last six hours
STEPS = ("select_shopcart", "query_goods", "query_inv", "save_order", "save_order_goods", "delete_shopcart",
         "schedule_timeout")  # fmt: skip
SQL = "SELECT `goods_goods`.`id`, `goods_goods`.`name`, `goods_goods`.`price` FROM `goods_goods` WHERE `id` IN (%s)"


class _Ids:
    def __init__(self, seed: int):
        self.random = random.Random(seed)

    def trace(self) -> str:
        return f"{self.random.getrandbits(128):032x}"

    def span(self) -> str:
        return f"{self.random.getrandbits(64):016x}"


def _row(trace_id, span_id, parent, entry, name, kind, start, duration, *, error=False, order_no="", refusal="",
         attributes=None):  # fmt: skip
    detail = json.dumps({"attributes": attributes or {}, "events": [], "links": [], "status": ""})
    return (trace_id, span_id, parent, entry, name, kind, "mall", start, duration, error, order_no, "", detail, refusal,
            "")  # fmt: skip


def _trace_rows(kind: str, ids: _Ids, start: int, number: int) -> list[tuple]:
    """The rows of one trace of ``kind`` (checkout, refusal, error, pay, close, get) starting at ``start`` ns."""
    rnd, trace_id, rows = ids.random, ids.trace(), []
    ms = 1_000_000
    order_no = f"2026120300{number:014d}"
    if kind in ("get", "pay", "close"):
        name = {"get": "GET api/goods/", "pay": "POST api/orders/{pk}/pay/", "close": "close_unpaid_order"}[kind]
        root = ids.span()
        duration = int(rnd.uniform(2, 15) * ms)
        rows.append(_row(trace_id, root, "", True, name, "SERVER" if kind != "close" else "INTERNAL", start,
                         duration, order_no="" if kind == "get" else order_no))  # fmt: skip
        parent = root
        if kind == "pay":
            parent = ids.span()
            rows.append(_row(trace_id, parent, root, False, "pay_order", "INTERNAL", start + ms, duration - 2 * ms,
                             order_no=order_no))  # fmt: skip
        for n in range({"get": 2, "pay": 4, "close": 3}[kind]):
            rows.append(_row(trace_id, ids.span(), parent, False, "SELECT", "CLIENT", start + n * ms // 2, ms // 3,
                             attributes={"db.statement": SQL}))  # fmt: skip
        return rows
    slow = rnd.random() < 0.03
    duration = int(rnd.uniform(15, 60) * ms) + (300 * ms if slow else 0)
    server, create = ids.span(), ids.span()
    steps = STEPS if kind == "checkout" else STEPS[:3] if kind == "refusal" else STEPS[:4]
    refused_at, failed_at = ("query_inv" if kind == "refusal" else ""), ("save_order" if kind == "error" else "")
    rows.append(_row(trace_id, server, "", True, "POST api/orders/", "SERVER", start, duration, error=bool(failed_at)))
    for n in range(4):  # token auth and the throttle's statements
        rows.append(_row(trace_id, ids.span(), server, False, "SELECT", "CLIENT", start + n * ms // 4, ms // 5,
                         attributes={"db.statement": SQL}))  # fmt: skip
    rows.append(_row(trace_id, create, server, False, "create_order", "INTERNAL", start + ms, duration - 2 * ms,
                     error=bool(failed_at), order_no=order_no if kind != "refusal" else "",
                     refusal="insufficient_stock" if refused_at else ""))  # fmt: skip
    offset = start + 2 * ms
    for step in steps:
        step_id, step_ns = ids.span(), (duration - 4 * ms) // len(steps)
        rows.append(_row(trace_id, step_id, create, False, step, "INTERNAL", offset, step_ns,
                         error=step == failed_at, refusal="insufficient_stock" * (step == refused_at)))  # fmt: skip
        for n in range(3):
            rows.append(_row(trace_id, ids.span(), step_id, False, "SELECT" if n else "INSERT", "CLIENT",
                             offset + n * step_ns // 4, step_ns // 5, attributes={"db.statement": SQL}))  # fmt: skip
        offset += step_ns
    return rows


MIX = (("checkout", 30), ("get", 40), ("pay", 15), ("close", 5), ("refusal", 7), ("error", 3))


def seed(spans: int, *, seed_value: int = 24) -> dict:
    """Write about ``spans`` rows shaped like the shop's traffic; return the placeholders of ``CASES``."""
    from django.db import connection, transaction

    from traces.store import TraceOutcomes, _insert_statement

    ids, now, outcomes = _Ids(seed_value), time.time_ns(), TraceOutcomes()
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    written, number, batch, order_nos, checkout_traces = 0, 0, [], [], []
    statement = _insert_statement(connection)
    while written < spans:
        kind = ids.random.choice(kinds)
        start = now - int(SPAN_WINDOW_S * 1e9 * (1 - written / spans))  # oldest first, as the store fills
        rows = outcomes.mark(_trace_rows(kind, ids, start, number)[::-1])[::-1]  # the entry last, as it ends
        if kind == "checkout":
            order_nos.append(rows[5][10])
            checkout_traces.append(rows[0][0])
        number += 1
        batch += rows
        written += len(rows)
        if len(batch) >= 5000 or written >= spans:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(statement, batch)
            batch = []
    moment = datetime.fromtimestamp(now / 1e9, tz=UTC)
    return {
        "order_no": order_nos[len(order_nos) // 2],
        "trace": checkout_traces[len(checkout_traces) // 2],
        "since": datetime.fromtimestamp(now / 1e9 - 3600, tz=UTC).isoformat().replace("+00:00", "Z"),
        "until": (moment.replace(microsecond=0)).isoformat().replace("+00:00", "Z"),
        "spans": written,
        "traces": number,
    }


def time_cases(cases, placeholders: dict, *, runs: int) -> list[dict]:
    """Fetch each case ``runs`` times (after one unmeasured fetch) as a user with the view permission."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench-explorer", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    results = []
    for label, template in cases:
        url = template.format(**placeholders)
        first = client.get(url, secure=True)
        if first.status_code != 200:
            raise SystemExit(f"{label}: {url} answered {first.status_code}: {first.content[:300]!r}")
        answer = first.json() if url.startswith("/api/") else {}
        listed = next((answer[key] for key in ("results", "operations", "spans") if key in answer), None)
        found = None if listed is None else len(listed)
        times, cpu = [], []
        for _ in range(runs):
            began, cpu_began = time.perf_counter(), time.process_time()
            client.get(url, secure=True)
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - cpu_began) * 1000)
        # CPU of this process (Django, and SQLite's own work in-process; not the MariaDB server's): on a
        # loaded machine the wall time also counts the waits for a core, this does not.
        row = {"case": label, "url": url, "found": found, "median_ms": statistics.median(times), "max_ms": max(times),
               "cpu_ms": statistics.median(cpu)}  # fmt: skip
        results.append(row)
        print(f"  {label:<40} {row['median_ms']:8.1f} ms median {row['max_ms']:8.1f} ms max "
              f"{row['cpu_ms']:7.1f} ms CPU  ({found})", flush=True)  # fmt: skip
    return results


# The indexes that differ between main and this branch (the rest are the same on both).
def index_sets():
    from django.db import models

    main = [models.Index(fields=["trace_id"], name="tracespan_trace")]
    branch = [models.Index(fields=["trace_id", "name"], name="tracespan_trace_name")]
    return {"main": main, "branch": branch}


def _use_indexes(chosen: str) -> None:
    from django.db import connection

    from traces.models import TraceSpan

    sets = index_sets()
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(f"SHOW INDEX FROM {TraceSpan._meta.db_table}")
            present = {row[2] for row in cursor.fetchall()}
        else:
            cursor.execute(f"PRAGMA index_list({TraceSpan._meta.db_table})")
            present = {row[1] for row in cursor.fetchall()}
    with connection.schema_editor() as editor:
        for name, indexes in sets.items():
            for index in indexes:
                if name != chosen and index.name in present:
                    editor.remove_index(TraceSpan, index)
                elif name == chosen and index.name not in present:
                    editor.add_index(TraceSpan, index)


def write_cost(*, rounds: int, checkouts: int) -> dict:
    """CPU and wall time of the store's export of checkout-shaped batches, main's indexes vs this branch's."""
    from perf.bench.traces.store import BATCH, checkout_shaped_spans
    from traces.models import TraceSpan
    from traces.store import TraceStoreExporter

    statements = [SQL] * 21  # three statements per step, as a checkout runs about that many
    spans = checkout_shaped_spans(checkouts, statements)
    per_checkout = len(spans) // checkouts
    exporter = TraceStoreExporter(retention=10**9, max_spans=10**9)
    exporter.prune()
    seeded_max = TraceSpan.objects.order_by("-id").values_list("id", flat=True).first() or 0
    measured: dict[str, list[float]] = {"main": [], "branch": []}
    wall: dict[str, list[float]] = {"main": [], "branch": []}
    for number in range(rounds):
        for name in ("main", "branch") if number % 2 == 0 else ("branch", "main"):
            _use_indexes(name)
            cpu, began = time.process_time(), time.perf_counter()
            for start in range(0, len(spans), BATCH):
                exporter.export(spans[start : start + BATCH])
            measured[name].append((time.process_time() - cpu) / checkouts * 1000)
            wall[name].append((time.perf_counter() - began) / checkouts * 1000)
            TraceSpan.objects.filter(id__gt=seeded_max).delete()
    _use_indexes("branch")
    result = {"spans_per_checkout": per_checkout}
    for name in ("main", "branch"):
        result[f"{name}_cpu_ms"] = statistics.median(measured[name])
        result[f"{name}_wall_ms"] = statistics.median(wall[name])
    result["wall_ratio"] = result["branch_wall_ms"] / result["main_wall_ms"]
    result["cpu_ratio"] = result["branch_cpu_ms"] / result["main_cpu_ms"]
    return result


def main(argv=None) -> int:
    from perf.bench import run
    from perf.bench.common.environment import prepare, shop_environment

    parser = argparse.ArgumentParser(prog="python -m perf explorer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=run.parse_args([]).database_url)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7, help="timed fetches of each case")
    parser.add_argument(
        "--write-rounds", type=int, default=6, help="rounds alternating main's and the branch's indexes"
    )
    parser.add_argument("--write-checkouts", type=int, default=60, help="checkouts written per round")
    parser.add_argument("--cases", default="", help="time only the cases whose label matches this regular expression")
    args = parser.parse_args(argv)
    prepare(shop_environment(args.database_url))
    from django.db import connection

    began = time.perf_counter()
    placeholders = seed(args.spans)
    print(f"{connection.vendor}: seeded {placeholders['spans']} spans ({placeholders['traces']} traces) "
          f"in {time.perf_counter() - began:.0f} s", flush=True)  # fmt: skip
    cases = [(label, url) for label, url in CASES if re.search(args.cases, label)]
    results = time_cases(cases, placeholders, runs=args.runs)
    worst = max(results, key=lambda r: r["median_ms"])
    print(f"slowest case: {worst['case']} {worst['median_ms']:.1f} ms median", flush=True)
    if args.write_rounds < 1:
        print(json.dumps({"vendor": connection.vendor, "cases": results}))
        return 0
    cost = write_cost(rounds=args.write_rounds, checkouts=args.write_checkouts)
    print(
        f"store write per checkout ({cost['spans_per_checkout']} spans) into the full table: "
        f"main's indexes {cost['main_wall_ms']:.2f} ms wall / {cost['main_cpu_ms']:.2f} ms CPU, "
        f"this branch's {cost['branch_wall_ms']:.2f} ms wall / {cost['branch_cpu_ms']:.2f} ms CPU "
        f"(x{cost['wall_ratio']:.3f} wall, x{cost['cpu_ratio']:.3f} CPU)",
        flush=True,
    )
    print(json.dumps({"vendor": connection.vendor, "cases": results, "write": cost}))
    return 0
