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

_meter = metrics.get_meter("mall.orders")

orders_placed = _meter.create_counter(
    "mall.orders.placed",
    unit="{order}",
    description="Checkouts by outcome: placed, a refusal's code (cart_empty, insufficient_stock, ...) or error",
)
checkout_duration = _meter.create_histogram(
    "mall.checkout.duration", unit="s", description="Duration of a checkout (create_order), by outcome"
)
orders_closed = _meter.create_counter(
    "mall.orders.closed", unit="{order}", description="Orders ended without payment, by reason: timeout | cancelled"
)
stock_returned = _meter.create_counter(
    "mall.stock.returned", unit="{unit}", description="Units of stock returned by cancelled and closed orders"
)
