"""Fault points of the order flow: where a demo or a test makes a step fail on purpose."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from orders.errors import CheckoutFaultInjected


@contextmanager
def fault_point(step: str) -> Iterator[None]:
    """Fail ``step`` at its end when ``CHECKOUT_FAIL_STEP`` names it (a demo and test switch).

    At the end, after the step's writes, so that what gets exercised is the rollback of a partial checkout.
    """
    yield
    if step == settings.CHECKOUT_FAIL_STEP:
        raise CheckoutFaultInjected(step=step)
