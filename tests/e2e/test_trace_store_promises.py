"""The built-in trace store's promises (issue 28): bounded at every moment, no stall, no silent loss, no
personal data. Real gunicorn workers, a real lock held by another database session, the OTLP receiver."""

import gc
import logging
import sqlite3
import statistics
import threading
import time

import pytest
import requests
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from mall.telemetry.privacy import PERSONAL_ATTRIBUTES
from tests.factories import TEST_PASSWORD, UserFactory, fill_cart
from tests.support import mariadb_sessions, read_log, run_concurrently, shop_env, shop_server, wait_until
from traces.models import DroppedSpans, TraceSpan
from traces.store import DROPPED_SPANS_METRIC, TraceStoreExporter, _insert_statement

pytestmark = pytest.mark.django_db(transaction=True)  # the store and the servers write through their own connections

SECRET = "s3cr3t-api-key"
USER_AGENT = "PrivateBrowser/9.9 (someone's laptop)"


def store_env(**overrides: str) -> dict[str, str]:
    return shop_env(MALL_TRACE_STORE="on", **overrides)


def wait_for(predicate, *, timeout: float, what: str, log_dir):
    """``wait_until`` that shows the server's log when it times out."""
    try:
        return wait_until(predicate, timeout=timeout, interval=0.2, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- gunicorn\n{read_log(log_dir, 'gunicorn')[-3000:]}") from None


@pytest.fixture
def customer(goods_in_stock):
    """A customer with a token and a cart of one line."""
    person = UserFactory()
    person.token = Token.objects.create(user=person).key
    fill_cart(person, (goods_in_stock(stock=50), 1))
    return person


def dropped_spans_counted(metric_reader) -> int:
    data = metric_reader.get_metrics_data()
    return sum(
        point.value
        for resource_metrics in (data.resource_metrics if data else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == DROPPED_SPANS_METRIC
        for point in metric.data.data_points
    )


# --- 1. The bound holds at every moment ----------------------------------------------------------------------

MAX_SPANS = 300
BATCH = 64  # OTEL_BSP_MAX_EXPORT_BATCH_SIZE of the store's processor in the workers
WORKERS = 2


@pytest.mark.slow
def test_an_anonymous_burst_keeps_the_store_within_its_bound_and_a_checkout_trace_survives(customer, address, tmp_path):
    env = store_env(MALL_TRACE_STORE_MAX_SPANS=str(MAX_SPANS), OTEL_BSP_MAX_EXPORT_BATCH_SIZE=str(BATCH))
    most, burst_over = [0], threading.Event()

    def watch():
        while not burst_over.is_set():
            most[0] = max(most[0], TraceSpan.objects.count())
        connection.close()

    with shop_server(env=env, log_dir=tmp_path, workers=WORKERS) as base_url:
        placed = requests.post(
            f"{base_url}/api/orders/", json=address, headers={"Authorization": f"Token {customer.token}"}, timeout=30
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        wait_for(
            lambda: TraceSpan.objects.filter(order_no=order["order_no"]).exists(),
            timeout=30, what="the checkout trace in the store", log_dir=tmp_path,
        )  # fmt: skip
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            answers = run_concurrently(
                lambda n: requests.get(f"{base_url}/api/goods/", timeout=30).status_code, list(range(900)), threads=6
            )
            assert set(answers) == {200}
            # The last batches of the burst reach the store about a second after their requests.
            wait_for(
                lambda: TraceSpan.objects.filter(start_ns__gt=time.time_ns() - 10**9).count() == 0,
                timeout=30, what="the burst's last batches", log_dir=tmp_path,
            )  # fmt: skip
        finally:
            burst_over.set()
            watcher.join()

    written = TraceSpan.objects.order_by("-id").values_list("id", flat=True).first()
    print(f"\nburst: {written} spans written, at most {most[0]} stored (bound {MAX_SPANS} + {WORKERS} × {BATCH})")
    assert written > 3 * MAX_SPANS  # a real burst: several times the bound went through the store
    assert most[0] <= MAX_SPANS + WORKERS * BATCH
    assert TraceSpan.objects.count() <= MAX_SPANS + WORKERS * BATCH
    kept = TraceSpan.objects.filter(trace_id=order["trace_id"])
    assert kept.filter(name="create_order", order_no=order["order_no"]).exists()  # the customer's checkout
    assert kept.filter(entry=True).exists()


def test_when_it_must_choose_the_store_prunes_traces_without_an_order_first():
    now = time.time_ns()

    def span(trace: str, n: int, order_no: str = "") -> TraceSpan:
        return TraceSpan(trace_id=trace * 32, span_id=f"{n:016x}", name="s", kind="INTERNAL", start_ns=now + n,
                         duration_ns=1, order_no=order_no)  # fmt: skip

    ordered = [span("a", 0, "M1"), span("a", 1)]  # the oldest: an order's trace (its root has no order number)
    anonymous = [span("b", n) for n in range(2, 12)]
    TraceSpan.objects.bulk_create(ordered + anonymous)

    TraceStoreExporter(retention=3600, max_spans=5, chunk=3).prune()

    left = list(TraceSpan.objects.order_by("id").values_list("trace_id", "span_id"))
    assert len(left) == 5
    assert left[:2] == [("a" * 32, f"{0:016x}"), ("a" * 32, f"{1:016x}")]  # the order's trace, whole
    assert [s for _, s in left[2:]] == [f"{n:016x}" for n in (9, 10, 11)]  # the newest anonymous spans


# --- 2. No stall behind a prune ---------------------------------------------------------------------------------

STORED = 150_000


def fill_store(count: int) -> None:
    now = time.time_ns()
    statement = _insert_statement(connection)
    rows = (
        (f"{n // 10:032x}", f"{n:016x}", "", n % 10 == 0, "GET api/goods/", "SERVER", "mall", now - count + n, 1000,
         False, "", "", "{}", "", "ok" if n % 10 == 0 else "")
        for n in range(count)
    )  # fmt: skip
    batch = []
    with connection.cursor() as cursor:
        for row in rows:
            batch.append(row)
            if len(batch) == 5000:
                cursor.executemany(statement, batch)
                batch.clear()
        cursor.executemany(statement, batch)


LOCK_WAIT_BOUND = 0.1  # issue 28: no checkout waits more than 100 ms behind a prune
LOCKING = ("BEGIN", "INSERT", "UPDATE", "DELETE")


class LockWaits:
    """An ``execute_wrapper`` timing each statement that can wait behind another transaction's lock.

    On SQLite those are BEGIN IMMEDIATE and a write outside a transaction (each waits for the database's
    write lock; inside a transaction the lock is already held); on MariaDB every write and locking read
    (row and table locks).
    """

    def __init__(self):
        self.waits: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statement, db = sql.lstrip().upper(), context["connection"]
            may_wait = db.vendor != "sqlite" or not db.in_atomic_block
            if may_wait and (statement.startswith(LOCKING) or "FOR UPDATE" in statement):
                self.waits.append((time.perf_counter() - began, sql[:60]))

    def worst(self) -> tuple[float, str]:
        return max(self.waits, default=(0.0, ""))


class Pauses:
    """The process's garbage-collection pauses (every thread stops): the longest, and how many."""

    def __init__(self):
        self.longest, self.count, self._began = 0.0, 0, 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.longest, self.count = max(self.longest, time.perf_counter() - self._began), self.count + 1

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)


def checkouts_beside(api, user, goods, address, spans, *, prune=None) -> tuple[list[float], LockWaits]:
    """Checkouts of ``user`` (through ``api``) in a thread of their own, while ``prune()`` runs in another
    thread (or 60 of them, without): each checkout's time, and the times of their locking statements."""
    latencies, waits, done = [], LockWaits(), threading.Event()

    def checkout() -> None:
        fill_cart(user, (goods, 1))
        with connection.execute_wrapper(waits):
            began = time.perf_counter()
            response = api.post("/api/orders/", address, format="json")
            latencies.append(time.perf_counter() - began)
        assert response.status_code == 201, response.content
        spans.clear()  # thousands of checkouts' spans kept in memory would make each garbage collection longer

    def checkouts() -> None:
        if prune is None:
            for _ in range(60):
                checkout()
            return
        while not done.is_set():
            checkout()

    def pruning() -> None:
        try:
            prune()
        finally:
            done.set()

    roles = ["checkouts"] if prune is None else ["checkouts", "prune"]
    run_concurrently(lambda role: checkouts() if role == "checkouts" else pruning(), roles)
    return latencies, waits


@pytest.mark.slow
def test_no_checkout_waits_more_than_100_ms_behind_a_prune_of_150000_spans(
    api, user, goods_in_stock, address, spans, settings
):
    settings.CHECKOUT_THROTTLE_RATE = None  # one user checks out for as long as the prune runs
    goods = goods_in_stock(stock=100_000)
    # The objects of the test process (Django, pytest) are not scanned by each full collection: a checkout
    # and a prune in one process stop together for it, which is not waiting behind the prune.
    gc.freeze()
    try:
        with Pauses() as pauses:
            # The same checkouts without a prune first, in the same run: this machine's own spread now.
            alone, alone_waits = checkouts_beside(api, user, goods, address, spans)
            fill_store(STORED)
            exporter, pruned = TraceStoreExporter(retention=24 * 3600, max_spans=1000), []

            def prune() -> None:
                began = time.perf_counter()
                pruned.append(exporter.prune())
                pruned.append(time.perf_counter() - began)

            latencies, waits = checkouts_beside(api, user, goods, address, spans, prune=prune)
    finally:
        gc.unfreeze()

    (wait, statement), (wait_alone, _) = waits.worst(), alone_waits.worst()
    worst, worst_alone = max(latencies), max(alone)
    print(
        f"\n{connection.vendor}: prune of {STORED} spans in {pruned[1]:.1f} s; {len(latencies)} checkouts beside it: "
        f"worst lock wait {wait * 1000:.0f} ms ({statement!r}), worst checkout {worst * 1000:.0f} ms, median "
        f"{statistics.median(latencies) * 1000:.0f} ms; {len(alone)} checkouts without a prune: worst lock wait "
        f"{wait_alone * 1000:.0f} ms, worst checkout {worst_alone * 1000:.0f} ms, median "
        f"{statistics.median(alone) * 1000:.0f} ms; worst with/without {worst / worst_alone:.1f}x; longest gc "
        f"pause {pauses.longest * 1000:.0f} ms of {pauses.count}"
    )
    assert pruned[0] == STORED - 900  # down to the low-water mark
    assert len(latencies) >= 5  # the checkouts really ran beside the prune
    assert wait <= LOCK_WAIT_BOUND, f"a checkout waited {wait * 1000:.0f} ms for {statement!r} behind the prune"


# --- 3. No silent loss --------------------------------------------------------------------------------------------


def finished_spans(count: int, name: str):
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    tracer = provider.get_tracer("tests.store")
    spans = []
    for _ in range(count):
        with tracer.start_as_current_span(name) as span:
            pass
        spans.append(span)
    return spans


class StoreLocked:
    """Another database session holds the store's table (SQLite: the database) locked for writing."""

    _session = None

    def __enter__(self):
        table = TraceSpan._meta.db_table
        if connection.vendor == "sqlite":
            self._session = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
            self._session.execute("BEGIN IMMEDIATE")
            self._sessions = None
        else:
            self._sessions = mariadb_sessions(1)
            (self._session,) = self._sessions.__enter__()
            self._session.cursor().execute(f"LOCK TABLES {table} WRITE")
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self) -> None:
        if self._session is None:
            return
        if self._sessions is None:
            self._session.execute("ROLLBACK")
            self._session.close()
        else:
            self._session.cursor().execute("UNLOCK TABLES")
            self._sessions.__exit__(None, None, None)
        self._session = None


def test_a_failing_store_counts_what_it_drops_names_the_error_once_and_says_when_it_recovers(
    metric_reader, staff_user, caplog
):
    exporter = TraceStoreExporter(retention=3600, max_spans=1000, lock_wait=1, retry_interval=0)
    counted_before = dropped_spans_counted(metric_reader)
    caplog.set_level(logging.WARNING, logger="traces.store")

    with StoreLocked():
        assert exporter.export(finished_spans(3, "lost 1")).name == "FAILURE"
        assert exporter.export(finished_spans(4, "lost 2")).name == "FAILURE"
    assert exporter.export(finished_spans(2, "kept")).name == "SUCCESS"

    assert dropped_spans_counted(metric_reader) - counted_before == 7
    lines = [record.getMessage() for record in caplog.records if record.name == "traces.store"]
    assert len(lines) == 2, lines  # one when it began, one when it ended
    error = "database is locked" if connection.vendor == "sqlite" else "Lock wait timeout"
    assert "could not write 3 spans" in lines[0] and error in lines[0]
    assert "writing again; 7 spans dropped since" in lines[1]
    assert list(TraceSpan.objects.values_list("name", flat=True)) == ["kept", "kept"]
    (outage,) = DroppedSpans.objects.all()
    assert outage.count == 7 and error in outage.error

    client = Client()
    assert client.login(username=staff_user.username, password=TEST_PASSWORD)
    page = client.get("/admin/traces/", secure=True).content.decode()
    assert f"7 spans dropped since {outage.since:%Y-%m-%d %H:%M:%S} UTC" in page


def test_while_failing_the_store_drops_batches_at_once_until_it_retries():
    exporter = TraceStoreExporter(retention=3600, max_spans=1000, lock_wait=1, retry_interval=60)
    with StoreLocked():
        exporter.export(finished_spans(1, "lost"))
        began = time.monotonic()
        assert exporter.export(finished_spans(5, "lost too")).name == "FAILURE"
        assert time.monotonic() - began < 0.1  # no second wait for the lock: a flush or shutdown is not held up


@pytest.mark.slow
def test_a_server_with_a_stuck_store_stops_within_five_seconds(tmp_path):
    locked = StoreLocked()
    try:
        with shop_server(env=store_env(), log_dir=tmp_path) as base_url:
            assert requests.get(f"{base_url}/api/goods/", timeout=30).status_code == 200
            wait_for(lambda: TraceSpan.objects.exists(), timeout=30, what="the store working", log_dir=tmp_path)
            locked.__enter__()
            for _ in range(20):  # spans the worker still holds when it is told to stop
                assert requests.get(f"{base_url}/api/goods/", timeout=30).status_code == 200
            began = time.monotonic()  # the block's end stops the server: SIGTERM, then it waits for the exit
        stopped_in = time.monotonic() - began
    finally:
        locked.release()
    print(f"\nstopped in {stopped_in:.1f} s with the store's table locked")
    assert stopped_in < 5 + 2  # bounded lock wait and shutdown; the server's graceful timeout is 10 s
    assert "trace store: could not write" in read_log(tmp_path, "gunicorn")


# --- 4. No personal data by default -----------------------------------------------------------------------------


@pytest.mark.slow
def test_no_client_address_user_agent_or_query_value_is_stored_or_exported(otlp_receiver, tmp_path):
    env = store_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.grpc_endpoint, OTEL_BSP_SCHEDULE_DELAY="200")
    with shop_server(env=env, log_dir=tmp_path) as base_url:
        answer = requests.get(f"{base_url}/api/goods/?api_key={SECRET}", headers={"User-Agent": USER_AGENT}, timeout=30)
        assert answer.status_code == 200
        exported = wait_for(
            lambda: [s for s in otlp_receiver.spans_named("GET api/goods/") if s.attributes.get("http.target")],
            timeout=30, what="the exported server span", log_dir=tmp_path,
        )  # fmt: skip
        stored = wait_for(
            lambda: list(TraceSpan.objects.filter(trace_id=exported[0].trace_id, entry=True)),
            timeout=30, what="the stored server span", log_dir=tmp_path,
        )  # fmt: skip
    for attributes in (exported[0].attributes, stored[0].detail["attributes"]):
        assert not PERSONAL_ATTRIBUTES & set(attributes), attributes
        assert attributes["http.target"] == "/api/goods/"  # the path stays, the query goes
        values = " ".join(str(value) for value in attributes.values())
        assert SECRET not in values and "PrivateBrowser" not in values  # (the client is 127.0.0.1, as the server)
