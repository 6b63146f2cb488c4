"""Fault soak: mixed traffic against the shop for a set time while faults are injected on a schedule.

    python -m perf soak --minutes 2                      # CI's short run
    python -m perf soak --minutes 20 --report docs/…     # the recorded run (docs/SOAK.md)

Two gunicorn workers and two qclusters on a Redis broker of the soak's own (never the machine's
shared one) with MariaDB (its own database, dropped and recreated; the name must contain "bench").
Clients put goods in their cart, check out, then pay, cancel or leave the order to time out (a short
ORDER_PAY_TIMEOUT). Faults, in turn: SIGKILL a gunicorn worker, SIGKILL a qcluster's process group
(restarted after a pause), stop Redis (restarted on the same port), KILL the database connections,
the collector refuses, the collector hangs. At the end: the invariants, every order in one final state
(or pending and not yet due), requests by status, orders by outcome, the largest close lag, stock lost.
Exit status 1 on a failure: a 5xx or transport error outside an injected outage, a broken invariant,
an overdue pending order, a confirmed outcome that did not stick, or a stock unit lost.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python -m perf soak` from anywhere

import requests  # noqa: E402

from harness.processes import children, free_port  # noqa: E402
from perf.bench.checkout.statements import CHECKOUT_BODY  # noqa: E402
from perf.bench.common.environment import prepare  # noqa: E402
from perf.bench.common.environment import shop_environment as bench_environment  # noqa: E402
from perf.bench.common.otlp_sink import OtlpSink  # noqa: E402
from perf.bench.soak.faults import CollectorProxy, RedisServer, Supervised, kill_database_connections  # noqa: E402

OUTAGE_GRACE = 8.0  # seconds after an outage in which its 503s/transport errors are still its own
GOODS = 8
STOCK_PER_GOODS = 1_000_000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="traffic time")
    parser.add_argument("--database-url", default="mysql://root@127.0.0.1:3306/mall_bench_soak")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--pay-timeout", type=int, default=15, help="ORDER_PAY_TIMEOUT of the shop (seconds)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--log-dir", default=str(REPO / "perf" / "bench" / "soak-logs"))
    parser.add_argument("--report", help="also write the summary (Markdown) to this file")
    return parser.parse_args(argv)


@dataclass
class Observed:
    """What the clients saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)  # "checkout 201", ...
    errors: list = field(default_factory=list)  # (monotonic time, "checkout 503" / "pay ConnectionError")
    placed: set = field(default_factory=set)
    paid: set = field(default_factory=set)  # confirmed by a 200
    cancelled: set = field(default_factory=set)
    left: set = field(default_factory=set)  # never touched again: must time out
    checkouts: list = field(default_factory=list)  # (monotonic time, seconds) of each 201

    def record(self, what: str, response: requests.Response | None, error: Exception | None = None) -> None:
        label = f"{what} {response.status_code}" if response is not None else f"{what} {type(error).__name__}"
        with self.lock:
            self.statuses[label] += 1
            if response is None or response.status_code >= 500:
                self.errors.append((time.monotonic(), label))


def client(base_url: str, token: str, goods_ids: list[int], ends: float, seen: Observed, rng: random.Random) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"

    def call(what: str, method: str, path: str, **kwargs) -> requests.Response | None:
        try:
            response = session.request(method, f"{base_url}{path}", timeout=30, **kwargs)
        except requests.RequestException as exc:
            seen.record(what, None, exc)
            return None
        seen.record(what, response)
        return response

    while time.monotonic() < ends:
        line = {"goods": rng.choice(goods_ids), "nums": rng.randint(1, 3)}
        added = call("cart", "POST", "/api/cart/", json=line)
        if added is None or added.status_code != 201:
            continue
        began = time.perf_counter()
        placed = call(
            "checkout", "POST", "/api/orders/", json=CHECKOUT_BODY, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        if placed is None or placed.status_code != 201:
            continue
        took = time.perf_counter() - began
        order_id = placed.json()["id"]
        with seen.lock:
            seen.placed.add(order_id)
            seen.checkouts.append((time.monotonic(), took))
        roll = rng.random()
        action = "pay" if roll < 0.35 else "cancel" if roll < 0.55 else None
        if action is None:
            with seen.lock:
                seen.left.add(order_id)
            continue
        done = call(action, "POST", f"/api/orders/{order_id}/{action}/")
        if done is not None and done.status_code == 200:
            with seen.lock:
                (seen.paid if action == "pay" else seen.cancelled).add(order_id)
    session.close()


class Shop:
    """The processes under test and the faults injected into them."""

    def __init__(self, args, log_dir: Path):
        self.args = args
        self.sink = OtlpSink().start()
        self.collector = CollectorProxy(int(self.sink.grpc_endpoint.rsplit(":", 1)[1])).start()
        self.redis = RedisServer(log_dir / "redis.log").start()
        self.env = shop_environment(args, redis_url=self.redis.url, collector=self.collector.endpoint)
        self.port = free_port()
        gunicorn_args = [
            sys.executable, "-m", "gunicorn", "mall.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
            "--workers", "2", "--threads", "2",
        ]  # fmt: skip
        self.web = Supervised("gunicorn", gunicorn_args, env=self.env, log_dir=log_dir).start()
        self.workers = [
            Supervised(
                f"qcluster-{n}", [sys.executable, "manage.py", "qcluster"], env=self.env, log_dir=log_dir
            ).start()
            for n in (1, 2)
        ]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.outages: list[tuple[float, float, str]] = []  # (start, end, fault) on the monotonic clock
        self.faults: list[tuple[float, float, str]] = []  # every fault's window, the collector's included
        self.injected: list[str] = []
        self.collector_windows: list[tuple[float, float, str]] = []  # (start, end, "refuse" | "hang")
        self._stop = threading.Event()

    def processes(self) -> list[Supervised]:
        return [self.web, *self.workers]

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base_url}/api/goods/", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the shop did not answer in {timeout}s; see {self.web.log_path}")

    def supervise(self) -> None:
        while not self._stop.wait(1.0):
            for process in self.processes():
                process.restart_if_dead()

    # --- the faults; each returns (how long its outage lasts, whether it is an outage of the service)
    def kill_gunicorn_worker(self) -> str:
        workers = children(self.web.process.pid)
        if workers:
            os.kill(random.choice(workers), 9)
        return f"SIGKILL gunicorn worker ({len(workers)} running)"

    def kill_qcluster(self, pause: float) -> str:
        victim = random.choice(self.workers)
        victim.kill_group()
        self._stop.wait(pause)
        victim.start()
        return f"SIGKILL {victim.name}'s process group, restarted after {pause:.0f} s"

    def redis_outage(self, seconds: float) -> str:
        self.redis.stop()
        self._stop.wait(seconds)
        self.redis.start()
        return f"Redis stopped for {seconds:.0f} s (queued tasks lost)"

    def kill_database_connections(self) -> str:
        return f"KILL {kill_database_connections(self.args.database_url)} database connections"

    def collector_outage(self, mode: str, seconds: float) -> str:
        began = time.monotonic()
        self.collector.set_mode(mode)
        self._stop.wait(seconds)
        self.collector.set_mode("up")
        self.collector_windows.append((began, time.monotonic(), mode))
        return f"collector {mode}s for {seconds:.0f} s"

    def inject(self, traffic_seconds: float) -> None:
        """The faults in turn, evenly over the traffic time (repeated on long runs)."""
        interval = max(10.0, min(45.0, (traffic_seconds - 15) / 6))
        span = min(20.0, interval * 0.7)
        faults = [
            (self.kill_gunicorn_worker, (), True),
            (self.kill_qcluster, (min(5.0, span),), False),
            (self.redis_outage, (span,), True),
            (self.kill_database_connections, (), True),
            (self.collector_outage, ("refuse", span), False),
            (self.collector_outage, ("hang", span), False),
        ]
        next_at = time.monotonic() + 10
        ends = time.monotonic() + traffic_seconds - 5
        turn = 0
        while not self._stop.wait(max(0.0, next_at - time.monotonic())) and time.monotonic() < ends:
            fault, fault_args, outage = faults[turn % len(faults)]
            began = time.monotonic()
            what = fault(*fault_args)
            window = (began, time.monotonic() + OUTAGE_GRACE, what)
            self.faults.append(window)
            if outage:
                self.outages.append(window)
            self.injected.append(f"{began - self.started:6.1f} s  {what}")
            turn += 1
            next_at = began + interval

    def stop(self) -> None:
        self._stop.set()
        self.collector.set_mode("up")
        for process in self.processes():
            process.stop()
        self.redis.stop()
        self.collector.stop()
        self.sink.stop()


def soak_environment(args) -> dict[str, str]:
    """The bench's production-like environment with the soak's short ORDER_PAY_TIMEOUT."""
    return {**bench_environment(args.database_url), "ORDER_PAY_TIMEOUT": str(args.pay_timeout)}


def shop_environment(args, *, redis_url: str, collector: str) -> dict[str, str]:
    """The bench's production-like environment (perf/bench/run.py), on the soak's Redis, exporting to its collector."""
    return {
        **soak_environment(args),
        "DJANGO_Q_REDIS_URL": redis_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.database_url.startswith("mysql"):
        raise SystemExit("the soak runs on MariaDB/MySQL: --database-url mysql://…")
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    prepare(soak_environment(args))
    from perf.bench.checkout.statements import new_buyer, new_goods

    goods_ids = [new_goods(stock=STOCK_PER_GOODS, prefix="soak").pk for _ in range(GOODS)]
    tokens = [new_buyer(prefix="soak")[1] for _ in range(args.clients)]

    traffic_seconds = args.minutes * 60
    shop = Shop(args, log_dir)
    seen = Observed()
    try:
        shop.wait_ready()
        print(f"shop up at {shop.base_url}; traffic for {traffic_seconds:.0f} s with faults", flush=True)
        shop.started = time.monotonic()
        ends = shop.started + traffic_seconds
        threads = [
            threading.Thread(
                target=client, args=(shop.base_url, token, goods_ids, ends, seen, random.Random(args.seed + n))
            )
            for n, token in enumerate(tokens)
        ]
        threading.Thread(target=shop.supervise, name="supervisor", daemon=True).start()
        for thread in threads:
            thread.start()
        shop.inject(traffic_seconds)
        for thread in threads:
            thread.join()
        from perf.bench.soak.report import drain, verdict

        drain(args.pay_timeout)
    finally:
        shop.stop()
    return verdict(args, shop, seen, goods_ids, STOCK_PER_GOODS)


if __name__ == "__main__":
    sys.exit(main())
