"""The operations of the order flow by the names their spans carry (the contract's), with no imports: the
faults app names the steps it can hit by these, and ``orders.tracing`` (which calls the faults hook) too."""

# --- span names
CREATE_ORDER = "create_order"
# The checkout's steps, each a span under create_order, in the order they run.
CHECKOUT_STEPS = (
    "select_shopcart",
    "query_goods",
    "save_order",
    "save_order_goods",
    "delete_shopcart",
    "query_inv",
    "schedule_timeout",
)
PAY_ORDER = "pay_order"
CANCEL_ORDER = "cancel_order"
CLOSE_UNPAID_ORDER = "close_unpaid_order"  # one per order closed by the payment timeout, a root linked to its checkout
CLOSE_OVERDUE_ORDERS = "close_overdue_orders"  # one batch of the safety-net sweep
CLOSE_DUE_ORDERS = "close_due_orders"  # the task of a deadline bucket's schedule
