from mall.errors import DomainError


class FaultInjected(DomainError):
    """Raised by a step a fault rule (``manage.py faults set STEP --error``) hit: pay, cancel, close."""

    code = "fault_injected"
    default_detail = "A failure was injected (fault rule)."
    fault = True  # stands for a failure of the shop: traced as an error, not as a refusal


class CheckoutFaultInjected(FaultInjected):
    """Raised by a checkout step a fault rule (or ``CHECKOUT_FAIL_STEP``) hit; the checkout rolls back."""

    code = "checkout_fault_injected"
    default_detail = "A checkout failure was injected (fault rule or CHECKOUT_FAIL_STEP)."


class FaultInjectionOff(DomainError):
    code = "fault_injection_off"
    default_detail = "Fault injection is off: set DJANGO_DEBUG=1 or MALL_ALLOW_FAULT_INJECTION=1."
