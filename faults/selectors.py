"""Reads of the fault rules: each process reads the table at most once per ``REFRESH_SECONDS``."""

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from opentelemetry.instrumentation.utils import suppress_instrumentation

from faults.models import FaultRule, describe

# A rule set in one process reaches every other within this (plus a request's duration): the
# contract's 2 s; one small read per second per process costs nothing next to a checkout.
REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Rule:
    step: str
    kind: str
    milliseconds: int = 0
    rate: int = 100
    expires_at: datetime | None = None
    source: str = "rule"  # "rule" (the table) or "CHECKOUT_FAIL_STEP" (the start-up setting)

    def __str__(self) -> str:
        return describe(step=self.step, kind=self.kind, milliseconds=self.milliseconds, rate=self.rate)


_lock = threading.Lock()
_cache: dict = {"read_at": None, "rules": ()}


def fault_injection_allowed() -> bool:
    """Say whether this process may inject faults: DEBUG on or ``MALL_ALLOW_FAULT_INJECTION``."""
    return bool(settings.DEBUG or settings.MALL_ALLOW_FAULT_INJECTION)


def stored_rules(*, now: datetime | None = None) -> list[Rule]:
    """Return the unexpired rules of the table, read now (no cache)."""
    now = now or timezone.now()
    rows = FaultRule.objects.exclude(expires_at__lte=now).values_list(
        "step", "kind", "milliseconds", "rate", "expires_at"
    )
    return [Rule(*row) for row in rows]


def startup_rules() -> list[Rule]:
    """Return the rule ``CHECKOUT_FAIL_STEP`` stands for: an error on every call of that step."""
    step = settings.CHECKOUT_FAIL_STEP
    return [Rule(step=step, kind=FaultRule.Kind.ERROR, source="CHECKOUT_FAIL_STEP")] if step else []


def active_rules() -> list[Rule]:
    """Return the rules in force in this process: the table's only if fault injection is allowed.

    The table is read at most once per ``REFRESH_SECONDS``; expiry is checked on every call.
    ``CHECKOUT_FAIL_STEP`` is read on every call: the settings refuse it at start unless allowed.
    """
    if not fault_injection_allowed():
        return startup_rules()
    monotonic = time.monotonic()
    with _lock:
        read_at = _cache["read_at"]
        if read_at is None or monotonic - read_at >= REFRESH_SECONDS:
            # Untraced: a step span should show the step's own queries, not this once-a-second read.
            with suppress_instrumentation():
                _cache["rules"] = tuple(stored_rules())
            _cache["read_at"] = monotonic
        cached = _cache["rules"]
    now = timezone.now()
    rules = [rule for rule in cached if rule.expires_at is None or rule.expires_at > now]
    return startup_rules() + [rule for rule in rules if rule.step != settings.CHECKOUT_FAIL_STEP]


def rule_for(step: str) -> Rule | None:
    """Return the rule in force for ``step`` in this process, or None."""
    for rule in active_rules():
        if rule.step == step:
            return rule
    return None


def forget_cached_rules() -> None:
    """Make this process read the table on its next call (after a write here, and in tests)."""
    with _lock:
        _cache["read_at"] = None
