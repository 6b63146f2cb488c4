"""The generic tracing vocabulary: attribute keys outside any one app (docs/api.md lists them)."""

# --- attribute keys (shop data under mall.*; semantic conventions where one exists). The order flow's span
# names and order keys are orders.tracing's.
USER_ID = "user.id"
ORDER_NO = "mall.order.no"  # every trace of an order carries it: the trace store and the trace URLs search by it
REFUSAL_CODE = "mall.refusal.code"  # the 4xx code of a refused operation (the span stays UNSET)
LINK_KIND = "mall.link"  # on a span link: what the linked span is (e.g. create_order)

# --- attribute keys of the load generator's client spans (loadgen, place_test_orders)
USER_NAME = "user.name"
LOADGEN_OUTCOME = "mall.loadgen.outcome"  # placed | rejected | failed
LOADGEN_PAID = "mall.loadgen.paid"
LOADGEN_PAY = "mall.loadgen.pay"  # whether the plan pays the order
LOADGEN_ORDER_INDEX = "mall.loadgen.order_index"
LOADGEN_LINE_COUNT = "mall.loadgen.line_count"
