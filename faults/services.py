"""Writes of the fault rules (the ``faults`` command and the admin)."""

from datetime import timedelta

from django.utils import timezone

from faults.errors import FaultInjectionOff
from faults.models import STEPS, FaultRule
from faults.selectors import fault_injection_allowed, forget_cached_rules


def set_fault(
    *, step: str, kind: str, milliseconds: int = 0, rate: int = 100, for_seconds: float | None = None
) -> FaultRule:
    """Switch a fault on for ``step`` (replacing its rule), in every process of the shop within 2 s.

    Refused (``FaultInjectionOff``) unless DEBUG is on or ``MALL_ALLOW_FAULT_INJECTION`` is set.
    """
    if not fault_injection_allowed():
        raise FaultInjectionOff()
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
    if kind not in FaultRule.Kind.values:
        raise ValueError(f"unknown fault kind {kind!r}")
    if kind != FaultRule.Kind.ERROR and milliseconds <= 0:
        raise ValueError(f"a {kind} needs a positive number of milliseconds")
    if not 1 <= rate <= 100:
        raise ValueError("the rate is a percent from 1 to 100")
    if for_seconds is not None and for_seconds <= 0:
        raise ValueError("--for takes a positive number of seconds")
    expires_at = timezone.now() + timedelta(seconds=for_seconds) if for_seconds is not None else None
    rule, _ = FaultRule.objects.update_or_create(
        step=step,
        defaults={
            "kind": kind,
            "milliseconds": 0 if kind == FaultRule.Kind.ERROR else milliseconds,
            "rate": rate,
            "expires_at": expires_at,
        },
    )
    forget_cached_rules()
    return rule


def clear_faults(*, step: str | None = None) -> int:
    """Switch off the rule of ``step`` (every rule without it); returns how many rules were removed.

    Allowed even with fault injection off: removing a rule is always safe.
    """
    rules = FaultRule.objects.all() if step is None else FaultRule.objects.filter(step=step)
    removed, _ = rules.delete()
    forget_cached_rules()
    return removed
