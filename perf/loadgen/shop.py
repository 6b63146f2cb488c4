"""What placing one order is, whichever shop takes it: empty the cart, fill it, check out, maybe pay.

A shop (``perf.loadgen.in_process.InProcessShop`` or ``perf.loadgen.http_client.HttpShop``) supplies the steps;
each raises ``Refused`` when the shop says no (an outcome) and ``Failed`` when the shop fails. Every order
is a root span ``place_test_order``: the checkout's spans are its descendants.
"""

from __future__ import annotations

import time

from opentelemetry.trace import Status, StatusCode

from mall.telemetry import format_trace_id, names, new_root_context
from orders.tracing import ORDER_ID
from perf.loadgen.plan import OrderOutcome, OrderPlan, Shopper

ROOT_SPAN_NAME = "place_test_order"
ORDER_DETAILS = {
    "address": "1 Load Test Lane, Springfield",
    "signer_name": "Load Tester",
    "signer_mobile": "+15550100",
    "note": "placed by place_test_orders",
}


class LoadSetupError(Exception):
    """The run cannot start (no users, no goods, the shop does not answer)."""


class Refused(Exception):
    """The shop said no (a 4xx or a domain error): an outcome, not a failure of the shop."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class Failed(Exception):
    """The shop failed (a 5xx, a transport error, an unexpected exception: ``cause``, recorded on the span)."""

    def __init__(self, kind: str, cause: BaseException | None = None):
        super().__init__(kind)
        self.kind = kind
        self.cause = cause


class Shop:
    """The steps of an order; ``place`` runs them in a root span and reports the outcome."""

    mode = ""
    base_url: str | None = None
    tracer = None

    def empty_cart(self, shopper: Shopper) -> None:
        raise NotImplementedError

    def add_to_cart(self, shopper: Shopper, goods_id: int, nums: int) -> None:
        raise NotImplementedError

    def check_out(self, shopper: Shopper) -> tuple[int, object]:
        """Place the order of the cart: its id and what ``pay`` needs to pay it."""
        raise NotImplementedError

    def pay(self, shopper: Shopper, order: object) -> None:
        raise NotImplementedError

    def place(self, shopper: Shopper, plan: OrderPlan) -> OrderOutcome:
        with self.tracer.start_as_current_span(
            ROOT_SPAN_NAME, context=new_root_context(), attributes=_root_attributes(shopper, plan)
        ) as span:
            outcome = OrderOutcome(index=plan.index, username=shopper.username, trace_id=format_trace_id(span))
            error = None
            try:
                if shopper.cart_dirty:
                    self.empty_cart(shopper)
                shopper.cart_dirty = True
                for goods_id, nums in plan.lines:
                    self.add_to_cart(shopper, goods_id, nums)
                started = time.perf_counter()
                try:
                    outcome.order_id, order = self.check_out(shopper)
                finally:
                    outcome.checkout_seconds = time.perf_counter() - started
                shopper.cart_dirty = False
                if plan.pay:
                    try:
                        self.pay(shopper, order)
                        outcome.paid = True
                    except Refused as exc:
                        outcome.pay_rejected = exc.code
            except Refused as exc:
                outcome.rejected = exc.code
            except Failed as exc:
                outcome.failure = exc.kind
                error = exc.cause
            _annotate(span, outcome, error)
        return outcome

    def end_thread(self) -> None:
        """Release what the calling thread used (its connections); the runner's threads end here."""

    def finish(self) -> None:
        """Export the run's spans."""


def _root_attributes(shopper: Shopper, plan: OrderPlan) -> dict:
    return {
        names.USER_NAME: shopper.username,
        names.LOADGEN_ORDER_INDEX: plan.index,
        names.LOADGEN_LINE_COUNT: len(plan.lines),
        names.LOADGEN_PAY: plan.pay,
    }


def _annotate(span, outcome: OrderOutcome, exc: BaseException | None = None) -> None:
    span.set_attribute(names.LOADGEN_OUTCOME, outcome.result)
    if outcome.order_id is not None:
        span.set_attribute(ORDER_ID, outcome.order_id)
    span.set_attribute(names.LOADGEN_PAID, outcome.paid)
    if exc is not None:
        span.record_exception(exc)
    if outcome.failure or outcome.rejected:
        span.set_status(Status(StatusCode.ERROR, outcome.failure or outcome.rejected))
