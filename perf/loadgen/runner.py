"""Places the planned orders of a run on threads, one order per shopper at a time."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from harness.threads import run_together
from perf.loadgen.plan import OrderOutcome, OrderPlan, Shopper
from perf.loadgen.shop import Shop


def run_orders(
    *,
    shop: Shop,
    shoppers: list[Shopper],
    plans: list[OrderPlan],
    concurrency: int,
    on_outcome: Callable[[OrderOutcome], None] = lambda outcome: None,
) -> tuple[list[OrderOutcome], float]:
    """Place the planned orders on ``concurrency`` threads; returns the outcomes (by index) and the seconds taken.

    A shopper places one order at a time: a thread takes an idle shopper for each order, so two
    orders never share a cart. Fewer shoppers than threads caps the orders in flight.
    """
    idle: queue.Queue[Shopper] = queue.Queue()
    for shopper in shoppers:
        idle.put(shopper)
    outcomes: list[OrderOutcome] = []
    lock = threading.Lock()

    def work(_thread: int, ready, pending) -> None:
        try:
            ready()
            for plan in pending:
                shopper = idle.get()
                try:
                    outcome = shop.place(shopper, plan)
                except Exception as exc:  # a bug of the driver must not lose the order's outcome
                    outcome = OrderOutcome(index=plan.index, username=shopper.username, failure=type(exc).__name__)
                finally:
                    idle.put(shopper)
                with lock:
                    outcomes.append(outcome)
                on_outcome(outcome)
        finally:
            shop.end_thread()

    elapsed = run_together(range(max(1, min(concurrency, len(plans)))), plans, work)
    return sorted(outcomes, key=lambda outcome: outcome.index), elapsed
