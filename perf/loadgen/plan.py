"""The orders of a load run, planned up front from a seeded RNG (one per order: a run does not depend on thread
scheduling), the demo users who place them, and what became of each."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class OrderPlan:
    index: int
    lines: tuple[tuple[int, int], ...]  # (goods id, units)
    pay: bool


def plan_orders(*, count: int, goods_ids: list[int], lines: int, pay_ratio: float, seed: int) -> list[OrderPlan]:
    """``count`` orders of ``lines`` distinct random goods (1-3 units each); a ``pay_ratio`` share is paid."""
    plans = []
    for index in range(count):
        rng = random.Random(f"{seed}:{index}")
        chosen = rng.sample(goods_ids, min(lines, len(goods_ids)))
        plans.append(
            OrderPlan(
                index=index,
                lines=tuple((goods_id, rng.randint(1, 3)) for goods_id in chosen),
                pay=rng.random() < pay_ratio,
            )
        )
    return plans


@dataclass
class Shopper:
    """A demo user placing orders; one order at a time (its cart is shared by its orders)."""

    username: str
    user: object = None  # in-process: the User
    token: str = ""  # HTTP: the API token
    cart_dirty: bool = True  # lines left over (seeded, or from a refused order): emptied before the next fill


@dataclass
class OrderOutcome:
    index: int
    username: str
    trace_id: str = ""
    order_id: int | None = None  # set once the shop placed the order
    rejected: str = ""  # error code of a refusal (4xx / domain error)
    failure: str = ""  # 5xx, transport error or unexpected exception
    paid: bool = False
    pay_rejected: str = ""
    checkout_seconds: float | None = None

    @property
    def placed(self) -> bool:
        return self.order_id is not None

    @property
    def result(self) -> str:
        """``failed``, ``placed`` or ``rejected``."""
        return "failed" if self.failure else "placed" if self.placed else "rejected"

    @property
    def label(self) -> str:
        if self.failure:
            return f"failed: {self.failure}"
        return "placed" if self.placed else f"rejected: {self.rejected}"
