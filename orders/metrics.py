"""The shop's metric instruments (exported through the same OTLP pipeline as traces)."""

from opentelemetry import metrics

CHECKOUT_OUTCOMES = ("placed", "insufficient_stock", "cart_empty", "error")

_meter = metrics.get_meter("mall.orders")

orders_placed = _meter.create_counter(
    "mall.orders.placed",
    unit="{order}",
    description="Checkouts by outcome: placed | insufficient_stock | cart_empty | error",
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
