from mall.errors import DomainError


class OrderNotPending(DomainError):
    status_code = 409
    code = "order_not_pending"
    default_detail = "The order is no longer pending."


class OrderNotFound(DomainError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used for a different order request."


class OrderTooLarge(DomainError):
    status_code = 400
    code = "order_too_large"
    default_detail = "The order total is larger than the shop accepts."


class CheckoutFaultInjected(DomainError):
    """Raised by the step named in CHECKOUT_FAIL_STEP (demos of error traces, rollback tests)."""

    status_code = 503
    code = "checkout_fault_injected"
    default_detail = "A checkout failure was injected (CHECKOUT_FAIL_STEP)."
