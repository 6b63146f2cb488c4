"""Checkout cycles over HTTP for the bench: each client a thread with its own session, user and token.

A cycle is what a customer does: put a goods in the cart (POST /api/cart/), then check out (POST
/api/orders/). Throughput counts completed cycles per second of wall time; latency is the checkout
request's alone.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import requests

from harness.threads import run_together
from perf.loadgen.stats import percentile


@dataclass(frozen=True)
class Buyer:
    token: str
    goods_id: int  # what this client buys in this batch


@dataclass(frozen=True)
class BatchResult:
    cycles: int
    seconds: float
    latencies: tuple[float, ...]  # seconds, of the successful checkout requests
    failures: dict[str, int]

    @property
    def per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        """Checkout latency (seconds) at ``share``; NaN without a successful checkout."""
        return percentile(self.latencies, share, default=float("nan"))


def run_batch(base_url: str, buyers: list[Buyer], *, cycles: int, checkout: dict, timeout: float = 60) -> BatchResult:
    """``cycles`` checkout cycles shared by the buyers (one thread each), released together; ``checkout`` is the
    body of each POST /api/orders/."""
    lock = threading.Lock()
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    def fail(what: str) -> None:
        with lock:
            failures[what] += 1

    def client(buyer: Buyer, ready, jobs) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {buyer.token}"
        cart = {"goods": buyer.goods_id, "nums": 1}
        mine = []
        try:
            ready()
            for _ in jobs:
                try:
                    added = session.post(f"{base_url}/api/cart/", json=cart, timeout=timeout)
                    if added.status_code != 201:
                        fail(f"cart {added.status_code}")
                        continue
                    began = time.perf_counter()
                    placed = session.post(f"{base_url}/api/orders/", json=checkout, timeout=timeout)
                    took = time.perf_counter() - began
                except requests.RequestException as exc:
                    fail(type(exc).__name__)
                    continue
                if placed.status_code == 201:
                    mine.append(took)
                else:
                    fail(f"checkout {placed.status_code} {placed.text[:80]}")
        finally:
            session.close()
            with lock:
                latencies.extend(mine)

    seconds = run_together(buyers, range(cycles), client)
    return BatchResult(cycles=len(latencies), seconds=seconds, latencies=tuple(latencies), failures=dict(failures))
