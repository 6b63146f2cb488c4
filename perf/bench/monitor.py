"""The trace monitor's cost at a full store: 200,000 stored spans, timed through the JSON and the pages.

Seeds a bench database with spans shaped like the shop's (checkouts with their seven steps and SQL,
refusals, faults, anonymous GETs, pays), spread over the last 24 hours, then fetches each URL of
``URLS`` through Django's test client as a user holding the trace view permission: median and max of
``--runs`` runs each. ``python -m perf.bench.monitor [--database-url URL] [--spans N] [--runs R]``
(the database name must contain "bench": it is dropped and created).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from perf.bench.environment import prepare, shop_environment

DEFAULT_URL = "sqlite:////tmp/mall-bench-monitor.sqlite3"
# The monitor's cases; a "{trace}" is one checkout trace of the seeded store.
URLS = (
    "/api/traces/operations/?window=900",
    "/api/traces/operations/",
    "/api/traces/operations/?window=86400",
    "/admin/traces/monitor/?window=86400",
    "/api/traces/{trace}/",
    "/admin/traces/{trace}/",
)
STEPS = ("select_shopcart", "query_goods", "query_inv", "save_order", "save_order_goods", "delete_shopcart",
         "schedule_timeout")  # fmt: skip
SQL = 'SELECT "goods_goods"."id", "goods_goods"."name" FROM "goods_goods" WHERE "goods_goods"."id" IN (%s)'


def _rows(count: int, now_ns: int, rng: random.Random, columns: tuple[str, ...]):
    """Yield ``count`` span rows (values of ``columns``) of whole traces over the last 24 hours."""
    made = number = 0
    while made < count:
        number += 1
        trace_id, start = f"{rng.getrandbits(128):032x}", now_ns - rng.randrange(24 * 3600 * 10**9)
        kind = rng.choices(("checkout", "refusal", "fault", "get", "pay"), (60, 8, 2, 25, 5))[0]
        spans = []

        def add(name, span_kind, parent, begin, duration, *, error=False, attributes=None, order_no="", spans=spans,
                trace_id=trace_id):  # fmt: skip
            span_id = f"{rng.getrandbits(64):016x}"
            detail = {"attributes": attributes or {}, "events": [], "links": [], "status": ""}
            # By column name: the store's model may have more columns (e.g. a stored refusal code).
            row = {"trace_id": trace_id, "span_id": span_id, "parent_span_id": parent, "entry": parent == "",
                   "name": name, "kind": span_kind, "service": "mall", "start_ns": begin, "duration_ns": duration,
                   "error": error, "order_no": order_no, "linked_trace_id": "", "detail": json.dumps(detail),
                   "refusal_code": (attributes or {}).get("mall.refusal.code", "")}  # fmt: skip
            spans.append(tuple(row.get(column, "") for column in columns))
            return span_id

        if kind == "get":
            root = add("GET api/goods/", "SERVER", "", start, rng.randrange(2, 9) * 10**6)
            add("SELECT", "CLIENT", root, start + 10**6, 3 * 10**5, attributes={"db.statement": SQL})
        elif kind == "pay":
            order_no = f"2026{number:025d}"
            root = add("POST api/orders/{pk}/pay/", "SERVER", "", start, 6 * 10**6)
            pay = add("pay_order", "INTERNAL", root, start + 10**6, 4 * 10**6, order_no=order_no,
                      attributes={"mall.order.no": order_no})  # fmt: skip
            add("UPDATE", "CLIENT", pay, start + 2 * 10**6, 10**6, attributes={"db.statement": SQL})
        else:
            order_no = f"2026{number:025d}" if kind == "checkout" else ""
            refusal = {"mall.refusal.code": "cart_empty"} if kind == "refusal" else {}
            total = rng.randrange(15, 60) * 10**6
            root = add("POST api/orders/", "SERVER", "", start, total, error=kind == "fault")
            create = add("create_order", "INTERNAL", root, start + 2 * 10**6, total - 3 * 10**6, error=kind == "fault",
                         order_no=order_no, attributes={"mall.order.no": order_no, **refusal})  # fmt: skip
            at, steps = start + 2 * 10**6, STEPS[:1] if kind == "refusal" else STEPS
            for step in steps:
                duration = rng.randrange(5, 40) * 10**5
                span = add(step, "INTERNAL", create, at, duration, attributes=refusal)
                add("SELECT", "CLIENT", span, at + 10**5, duration // 2, attributes={"db.statement": SQL})
                if step in ("save_order", "save_order_goods"):
                    add("INSERT", "CLIENT", span, at + duration // 2, duration // 3, attributes={"db.statement": SQL})
                at += duration
        made += len(spans)
        yield from spans


def seed(count: int) -> str:
    """Write ``count`` spans; return a checkout trace id of the last hour."""
    from django.db import connection, transaction

    from traces.models import TraceSpan
    from traces.store import COLUMNS, _insert_statement

    rng, now, rows = random.Random(24), time.time_ns(), []
    for row in _rows(count, time.time_ns(), rng, COLUMNS):
        rows.append(row)
        if len(rows) >= 5000:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(_insert_statement(connection), rows)
            rows = []
    if rows:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(_insert_statement(connection), rows)
    recent = TraceSpan.objects.filter(name="save_order", start_ns__gte=now - 3600 * 10**9).order_by("-start_ns")
    return recent.values_list("trace_id", flat=True)[0]


def time_urls(trace_id: str, runs: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("bench-monitor", password="unused-bench-password")
    client = Client()
    client.force_login(user)
    results = []
    for template in URLS:
        url = template.format(trace=trace_id)
        timings, cpu = [], []
        for _ in range(runs + 1):  # the first run warms the caches and is not counted
            began, began_cpu = time.perf_counter(), time.process_time()
            response = client.get(url, secure=True)
            timings.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)  # this process only: not MariaDB's share
            assert response.status_code == 200, (url, response.status_code)
        results.append(
            {
                "url": url,
                "median_ms": statistics.median(timings[1:]),
                "max_ms": max(timings[1:]),
                "cpu_ms": statistics.median(cpu[1:]),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args(argv)
    env = shop_environment(options.database_url)
    env.update(DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_ALLOWED_HOSTS="testserver")
    prepare(env)
    began = time.perf_counter()
    trace_id = seed(options.spans)
    from traces.models import TraceSpan

    stored = TraceSpan.objects.count()
    print(f"seeded {stored} spans in {time.perf_counter() - began:.1f} s", flush=True)
    for result in time_urls(trace_id, options.runs):
        print(
            f"{result['url']:<52} median {result['median_ms']:7.1f} ms   max {result['max_ms']:7.1f} ms"
            f"   (this process's CPU {result['cpu_ms']:6.1f} ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
