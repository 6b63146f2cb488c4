"""The one fault hook of the shop: ``with inject(step):`` around a step's work, inside its span."""

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace

from faults.errors import CheckoutFaultInjected, FaultInjected
from faults.models import FaultRule
from faults.selectors import Rule, rule_for
from orders import steps as names

logger = logging.getLogger("faults")

FAULT_EVENT = "mall.fault"
FAULT_KIND = "mall.fault.kind"
FAULT_STEP = "mall.fault.step"
FAULT_MILLISECONDS = "mall.fault.milliseconds"
FAULT_RATE = "mall.fault.rate"
FAULT_SOURCE = "mall.fault.source"

_draw = random.Random()


@contextmanager
def inject(step: str) -> Iterator[None]:
    """Apply the fault rule in force for ``step``, if this call is among the share it hits.

    error: raised at the step's end, after its writes (so its transaction's rollback is exercised);
    delay: a sleep before the step's work; hold: a sleep at its end, its transaction's locks still held.
    A hit puts the event ``mall.fault`` on the current span (the step's) and logs "injected fault".
    """
    rule = draw(step)
    if rule is None:
        yield
        return
    record_hit(rule)
    if rule.kind == FaultRule.Kind.DELAY:
        time.sleep(rule.milliseconds / 1000)
    yield
    if rule.kind == FaultRule.Kind.HOLD:
        time.sleep(rule.milliseconds / 1000)
    elif rule.kind == FaultRule.Kind.ERROR:
        error = CheckoutFaultInjected if step in names.CHECKOUT_STEPS else FaultInjected
        raise error(step=step)


def draw(step: str) -> Rule | None:
    """Return the rule in force for ``step`` if this call is among the share it hits (drawn now), else None.

    For a caller that applies the rule itself (a batch of closes, one draw per order); ``inject`` uses it.
    """
    rule = rule_for(step)
    if rule is None or (rule.rate < 100 and _draw.random() * 100 >= rule.rate):
        return None
    return rule


def record_hit(rule: Rule, span: trace.Span | None = None) -> None:
    """Put the event ``mall.fault`` on ``span`` (default: the current span) and log "injected fault"."""
    attributes = {FAULT_KIND: rule.kind, FAULT_STEP: rule.step, FAULT_RATE: rule.rate, FAULT_SOURCE: rule.source}
    if rule.kind != FaultRule.Kind.ERROR:
        attributes[FAULT_MILLISECONDS] = rule.milliseconds
    (span or trace.get_current_span()).add_event(FAULT_EVENT, attributes)
    logger.warning(
        "injected fault step=%s kind=%s milliseconds=%s rate=%s", rule.step, rule.kind, rule.milliseconds, rule.rate
    )
