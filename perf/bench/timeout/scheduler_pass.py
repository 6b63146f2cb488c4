"""The scheduler pass with many pending schedules (part of perf/bench/timeout/run.py): django-q2's ``scheduler()`` and
its locking read, with and without the index on ``django_q_schedule.next_run`` (migration orders/0005)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import timedelta

from perf.bench.timeout.sweep import CLOSE_TASK, postpone_safety_net  # CLOSE_TASK: the per-order design's rows

INDEX_NAME = "mall_schedule_next_run"  # orders/migrations/0005


@dataclass
class PassTime:
    pending: int
    indexed_ms: float  # the whole pass (django-q2's scheduler()), median of several
    unindexed_ms: float
    query_indexed_ms: float  # its locking read of the due schedules alone, in its transaction
    query_unindexed_ms: float


def _insert_pending(count: int, *, first_id: int) -> None:
    """``count`` future ONCE schedules like the checkout's, in multi-row INSERTs of 5,000 (fast, raw)."""
    from datetime import UTC, datetime

    from django.db import connection, transaction

    now = datetime.now(UTC).replace(tzinfo=None)
    chunk = 5_000
    sql_head = "INSERT INTO django_q_schedule (id, func, args, kwargs, schedule_type, repeats, next_run) VALUES "
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, count, chunk):
            rows = range(start, min(count, start + chunk))
            params = []
            for n in rows:  # deadlines spread over the next 30 minutes, as ORDER_PAY_TIMEOUT's default makes them
                params += [
                    first_id + n,
                    CLOSE_TASK,
                    repr((first_id + n, "")),
                    "{}",
                    "O",
                    -1,
                    (now + timedelta(seconds=60 + (n * 7919) % 1740)).isoformat(sep=" "),
                ]
            cursor.execute(sql_head + ",".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows)), params)


def _pass_ms(broker, passes: int) -> float:
    from django_q.scheduler import scheduler

    times = []
    for _ in range(passes):
        began = time.perf_counter()
        scheduler(broker=broker)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _query_ms(passes: int) -> float:
    """The pass's own statement: the locking read of due schedules (as django-q2's scheduler() builds it)."""
    from django.db import transaction
    from django.utils import timezone
    from django_q.models import Schedule

    times = []
    for _ in range(passes):
        began = time.perf_counter()
        with transaction.atomic():
            list(
                Schedule.objects.select_for_update()
                .exclude(repeats=0)
                .filter(next_run__lt=timezone.now())
                .filter(cluster__isnull=True)
            )
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _set_index(present: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if present:
            cursor.execute(f"CREATE INDEX {INDEX_NAME} ON django_q_schedule (next_run)")
        elif connection.vendor == "mysql":
            cursor.execute(f"DROP INDEX {INDEX_NAME} ON django_q_schedule")
        else:
            cursor.execute(f"DROP INDEX {INDEX_NAME}")


def measure_passes(pending_sizes: tuple[int, ...]) -> list[PassTime]:
    from django.db.models import Max
    from django_q.brokers import get_broker
    from django_q.models import Schedule

    postpone_safety_net()  # not due while measuring: the pass has nothing to queue
    broker = get_broker()  # this process's: the ORM broker; nothing is due, so nothing is queued
    results, inserted = [], 0
    first_id = (Schedule.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
    for size in pending_sizes:
        began = time.perf_counter()
        _insert_pending(size - inserted, first_id=first_id + inserted)
        print(f"  {size - inserted} pending schedules inserted in {time.perf_counter() - began:.1f} s", flush=True)
        inserted = size
        indexed, query_indexed = _pass_ms(broker, passes=9), _query_ms(passes=9)
        _set_index(False)
        try:
            unindexed, query_unindexed = _pass_ms(broker, passes=3), _query_ms(passes=3)
        finally:
            _set_index(True)
        results.append(PassTime(size, indexed, unindexed, query_indexed, query_unindexed))
        print(
            f"  scheduler pass, {size} pending: {indexed:.2f} ms with the index on next_run (its query "
            f"{query_indexed:.2f} ms), {unindexed:.1f} ms without (query {query_unindexed:.1f} ms)",
            flush=True,
        )
    return results
