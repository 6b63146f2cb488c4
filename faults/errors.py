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


class FaultInjectionOff(Exception):
    """Raised when a rule is set while fault injection is off (DEBUG off, no MALL_ALLOW_FAULT_INJECTION).

    Not a domain error: no API sets rules; the command exits 1 with it, the admin refuses the form.
    """

    code = "fault_injection_off"
    detail = "Fault injection is off: set DJANGO_DEBUG=1 or MALL_ALLOW_FAULT_INJECTION=1."

    def __init__(self):
        super().__init__(self.detail)
