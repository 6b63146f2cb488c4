"""The shop's tracing vocabulary, defined once: span names and attribute keys (docs/api.md lists them).

Order lifecycle event kinds and actors are the choices of ``orders.models.OrderEvent``.
"""

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
CLOSE_UNPAID_ORDER = "close_unpaid_order"  # the timeout task; also one per order of a sweep batch
CLOSE_OVERDUE_ORDERS = "close_overdue_orders"  # one batch of the safety-net sweep
CLOSE_DUE_ORDERS = "close_due_orders"  # the task of a deadline bucket's schedule

# --- attribute keys (shop data under mall.*; semantic conventions where one exists)
USER_ID = "user.id"
ORDER_NO = "mall.order.no"
ORDER_ID = "mall.order.id"
ORDER_LINE_COUNT = "mall.order.line_count"
ORDER_PAY_PRICE = "mall.order.pay_price"
ORDER_REPLAYED = "mall.order.replayed"
ORDER_OUTCOME = "mall.order.outcome"  # of a close: closed | skipped_*
ORDER_ACTOR = "mall.order.actor"  # who changed the order: customer | staff | timeout | sweep
REFUSAL_CODE = "mall.refusal.code"  # the 4xx code of a refused operation (the span stays UNSET)
SWEEP_CLOSED = "mall.sweep.closed"
TIMEOUT_CLOSED = "mall.timeout.closed"  # orders a deadline bucket's task closed
TIMEOUT_TASK_TRACE_ID = "mall.timeout.task_trace_id"  # on a close: the close_due_orders trace that made it
LINK_KIND = "mall.link"  # on a span link: what the linked span is (e.g. create_order)

# --- attribute keys of the load generator's client spans (loadgen, place_test_orders)
USER_NAME = "user.name"
LOADGEN_OUTCOME = "mall.loadgen.outcome"  # placed | rejected | failed
LOADGEN_PAID = "mall.loadgen.paid"
LOADGEN_PAY = "mall.loadgen.pay"  # whether the plan pays the order
LOADGEN_ORDER_INDEX = "mall.loadgen.order_index"
LOADGEN_LINE_COUNT = "mall.loadgen.line_count"
