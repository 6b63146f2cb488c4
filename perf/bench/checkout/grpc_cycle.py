#!/usr/bin/env python
"""The gRPC checkout cycle against the REST one, side by side on the same shop.

    python -m perf grpc [--database-url sqlite:////tmp/mall-bench-grpc.sqlite3]
        [--clients 4] [--cycles 120] [--rounds 3] [--warmup 16]

One database (recreated, migrated, seeded with the buyers and their goods), one gunicorn process and
one ``grpcserver`` process on it, each with ``--clients`` threads, telemetry off in both. A cycle is a
cart line added over REST (the proto has no cart) then a checkout: ``POST /api/orders/`` for REST,
``CreateGoodsOrder`` for gRPC. Rounds alternate the two transports; the table gives cycles/s and the
checkout's p50/p99 per transport and the ratio gRPC/REST.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc  # noqa: E402
import requests  # noqa: E402

from harness.processes import free_port, gunicorn, running, tail  # noqa: E402
from harness.threads import run_together  # noqa: E402
from perf.bench.common.environment import REPO, prepare, shop_environment, tracing_off  # noqa: E402
from perf.loadgen.cycles import BatchResult, Buyer, run_batch  # noqa: E402

CHECKOUT = {"address": "1 Bench Street", "signer_name": "Bench", "signer_mobile": "+15550100"}


def run_grpc_batch(base_url: str, target: str, buyers: list[Buyer], *, cycles: int, timeout: float = 60) -> BatchResult:
    """``cycles`` cycles as ``perf.loadgen.cycles.run_batch``, the checkout over gRPC (one channel per client)."""
    from orders.grpc import order_pb2, order_pb2_grpc

    lock = threading.Lock()
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    request = order_pb2.OrderRequest(
        username=CHECKOUT["signer_name"], address=CHECKOUT["address"], mobile=CHECKOUT["signer_mobile"]
    )

    def client(buyer: Buyer, ready, jobs) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {buyer.token}"
        metadata = (("authorization", f"Token {buyer.token}"),)
        mine, missed = [], Counter()
        with grpc.insecure_channel(target) as channel:
            create = order_pb2_grpc.OrderStub(channel).CreateGoodsOrder
            ready()
            for _ in jobs:
                added = session.post(
                    f"{base_url}/api/cart/", json={"goods": buyer.goods_id, "nums": 1}, timeout=timeout
                )
                if added.status_code != 201:
                    missed[f"cart {added.status_code}"] += 1
                    continue
                began = time.perf_counter()
                try:
                    create(request, metadata=metadata, timeout=timeout)
                except grpc.RpcError as error:
                    missed[f"checkout {error.code().name}"] += 1
                    continue
                mine.append(time.perf_counter() - began)
        session.close()
        with lock:
            latencies.extend(mine)
            failures.update(missed)

    seconds = run_together(buyers, range(cycles), client)
    return BatchResult(cycles=len(latencies), seconds=seconds, latencies=tuple(latencies), failures=dict(failures))


def seed_buyers(count: int, stock: int) -> list[Buyer]:
    from perf.bench.checkout.statements import new_buyer, new_goods, schedule_timeout_buckets_ahead

    buyers = [Buyer(token=new_buyer(prefix="grpc")[1], goods_id=new_goods(stock=stock).pk) for _ in range(count)]
    schedule_timeout_buckets_ahead()
    return buyers


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--database-url", default="sqlite:////tmp/mall-bench-grpc.sqlite3", help="dropped and recreated"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients; also the servers' threads")
    parser.add_argument("--cycles", type=int, default=120, help="cycles per measured batch")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each one batch per transport")
    parser.add_argument("--warmup", type=int, default=16, help="unmeasured cycles per transport first")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = tracing_off(shop_environment(args.database_url))
    prepare(env)
    buyers = seed_buyers(args.clients, stock=(args.warmup + args.cycles * args.rounds) * 2 + 10)
    target = f"127.0.0.1:{free_port()}"
    grpc_env = {**env, "MALL_GRPC_BIND": target, "MALL_GRPC_THREADS": str(args.clients)}
    grpc_log = Path("/tmp") / f"mall-bench-grpcserver-{target.rsplit(':', 1)[1]}.log"
    gunicorn_log = grpc_log.with_name(grpc_log.name.replace("grpcserver", "gunicorn"))
    results: dict[str, list[BatchResult]] = {"rest": [], "grpc": []}
    with (
        gunicorn(env=env, workers=1, threads=args.clients, log_path=gunicorn_log) as (base_url, _),
        running([sys.executable, str(REPO / "manage.py"), "grpcserver"], env=grpc_env, log_path=grpc_log) as server,
    ):
        batches = {
            "rest": lambda cycles: run_batch(base_url, buyers, cycles=cycles, checkout=CHECKOUT),
            "grpc": lambda cycles: run_grpc_batch(base_url, target, buyers, cycles=cycles),
        }
        deadline = time.monotonic() + 60
        while "listening on" not in tail(grpc_log):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"grpcserver did not start:\n{tail(grpc_log)}")
            time.sleep(0.2)
        for batch in batches.values():
            batch(args.warmup)
        for _ in range(args.rounds):
            for name, batch in batches.items():
                results[name].append(batch(args.cycles))
    print(report(results, clients=args.clients))
    failed = {name: [r.failures for r in runs if r.failures] for name, runs in results.items()}
    return 1 if any(failed.values()) else 0


def report(results: dict[str, list[BatchResult]], *, clients: int) -> str:
    def figures(runs: list[BatchResult]) -> tuple[float, float, float]:
        latencies = tuple(latency for run in runs for latency in run.latencies)
        merged = BatchResult(cycles=0, seconds=0, latencies=latencies, failures={})
        rate = sum(run.cycles for run in runs) / sum(run.seconds for run in runs)
        return rate, merged.percentile(0.5) * 1000, merged.percentile(0.99) * 1000

    rest, over_grpc = figures(results["rest"]), figures(results["grpc"])
    lines = [
        f"checkout cycle, {clients} clients, {len(results['rest'])} rounds (cart over REST in both)",
        "transport | cycles/s | checkout p50 ms | checkout p99 ms",
        f"REST      | {rest[0]:8.1f} | {rest[1]:15.1f} | {rest[2]:15.1f}",
        f"gRPC      | {over_grpc[0]:8.1f} | {over_grpc[1]:15.1f} | {over_grpc[2]:15.1f}",
        f"gRPC/REST | {over_grpc[0] / rest[0]:8.2f} | {over_grpc[1] / rest[1]:15.2f} | {over_grpc[2] / rest[2]:15.2f}",
    ]
    for name, runs in results.items():
        for run in runs:
            if run.failures:
                lines.append(f"{name} failures: {run.failures}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
