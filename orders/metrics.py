"""The shop's metric instruments (exported through the same OTLP pipeline as traces)."""

from opentelemetry import metrics

from carts.errors import CartEmpty
from goods.errors import GoodsUnavailable
from inventory.errors import InsufficientStock
from orders.errors import IdempotencyKeyReused, OrderTooLarge

# Every refusal (4xx) a checkout can answer has its own outcome; every fault (5xx: a bug, a database that
# stayed unavailable after the retries, an injected fault) is "error".
CHECKOUT_ERROR = "error"
CHECKOUT_REFUSALS = (CartEmpty, GoodsUnavailable, OrderTooLarge, InsufficientStock, IdempotencyKeyReused)
CHECKOUT_OUTCOMES = (
    "placed",
    *(refusal.code for refusal in CHECKOUT_REFUSALS),
    CHECKOUT_ERROR,
)

# Seconds, so a checkout's few milliseconds to seconds fall across the buckets: the HTTP semantic
# conventions' boundaries for http.server.request.duration. The SDK's default boundaries (0, 5, 10, 25, ...
# 10000) are made for milliseconds and would put every checkout in the first bucket.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
STEP = "mall.step"  # the attribute naming a checkout step (orders.steps.CHECKOUT_STEPS) on its histogram
STEP_OK = "ok"

_meter = metrics.get_meter("mall.orders")

orders_placed = _meter.create_counter(
    "mall.orders.placed",
    unit="{order}",
    description="Checkouts by outcome: placed, a refusal's code (cart_empty, insufficient_stock, ...) or error",
)
checkout_duration = _meter.create_histogram(
    "mall.checkout.duration",
    unit="s",
    description="Duration of a checkout (create_order), by outcome",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
)
checkout_step_duration = _meter.create_histogram(
    "mall.checkout.step.duration",
    unit="s",
    description="Duration of each checkout step (mall.step), by outcome: ok, a refusal's code or error",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
)
orders_closed = _meter.create_counter(
    "mall.orders.closed", unit="{order}", description="Orders ended without payment, by reason: timeout | cancelled"
)
stock_returned = _meter.create_counter(
    "mall.stock.returned", unit="{unit}", description="Units of stock returned by cancelled and closed orders"
)


def step_outcome(error: BaseException | None) -> str:
    """Name how a checkout step ended, for its histogram: ``ok``, the refusal's code, or ``error`` (a fault)."""
    if error is None:
        return STEP_OK
    if isinstance(error, CHECKOUT_REFUSALS):
        return error.code
    return CHECKOUT_ERROR
