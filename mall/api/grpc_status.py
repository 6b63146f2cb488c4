"""The one place where domain errors become gRPC status codes (the gRPC twin of ``STATUS_BY_CODE``).

The code itself travels in the trailing metadata key ``mall-error-code``; the codes of the
transport's own refusals (token, user id, throttle, invalid fields) are here too.
"""

import grpc

from mall.errors import DomainError

ERROR_CODE_METADATA_KEY = "mall-error-code"

GRPC_STATUS_BY_CODE: dict[str, grpc.StatusCode] = {
    # goods
    "goods_not_found": grpc.StatusCode.INVALID_ARGUMENT,
    "goods_unavailable": grpc.StatusCode.FAILED_PRECONDITION,
    # inventory
    "insufficient_stock": grpc.StatusCode.RESOURCE_EXHAUSTED,  # as the original's order-srv
    "stock_changed": grpc.StatusCode.ABORTED,
    "stock_too_large": grpc.StatusCode.INVALID_ARGUMENT,
    # carts
    "cart_empty": grpc.StatusCode.INVALID_ARGUMENT,  # the original's "购物车中没有结算的商品"
    "cart_line_too_large": grpc.StatusCode.INVALID_ARGUMENT,
    "cart_full": grpc.StatusCode.INVALID_ARGUMENT,
    "cart_line_gone": grpc.StatusCode.NOT_FOUND,
    "not_found": grpc.StatusCode.NOT_FOUND,  # an unknown order
    # orders
    "order_not_pending": grpc.StatusCode.FAILED_PRECONDITION,
    "order_ended": grpc.StatusCode.FAILED_PRECONDITION,
    "idempotency_key_reused": grpc.StatusCode.ALREADY_EXISTS,
    "order_too_large": grpc.StatusCode.INVALID_ARGUMENT,
    "checkout_fault_injected": grpc.StatusCode.UNAVAILABLE,
    "fault_injected": grpc.StatusCode.UNAVAILABLE,
    # log-in (mall.auth)
    "login_locked": grpc.StatusCode.RESOURCE_EXHAUSTED,
    # the transport's own refusals (orders.grpc.servicer)
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "malformed": grpc.StatusCode.INVALID_ARGUMENT,  # bytes that are not the method's message
    "not_authenticated": grpc.StatusCode.UNAUTHENTICATED,
    "authentication_failed": grpc.StatusCode.UNAUTHENTICATED,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    "throttled": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "database_unavailable": grpc.StatusCode.UNAVAILABLE,
    "internal_error": grpc.StatusCode.INTERNAL,
}

# Status codes that stand for a failure of the shop (a fault), as the 5xx of the HTTP API.
FAULT_STATUSES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE})


def grpc_status_for(code: str) -> grpc.StatusCode:
    """Map a domain or transport code to its gRPC status; an unmapped code is a refusal (INVALID_ARGUMENT)."""
    return GRPC_STATUS_BY_CODE.get(code, grpc.StatusCode.INVALID_ARGUMENT)


def grpc_status_of(error: DomainError) -> grpc.StatusCode:
    return grpc_status_for(error.code)
