from faults.errors import CheckoutFaultInjected  # noqa: F401  (raised by the checkout steps)
from mall.errors import DomainError


class OrderNotPending(DomainError):
    code = "order_not_pending"
    default_detail = "The order is no longer pending."


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used for a different order request."


class OrderTooLarge(DomainError):
    code = "order_too_large"
    default_detail = "The order total is larger than the shop accepts."


class OrderEnded(DomainError):
    code = "order_ended"
    default_detail = "The order has ended: only its note can be changed."
