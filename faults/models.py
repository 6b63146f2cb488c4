from django.db import models

from orders import steps as names

# The steps a rule may name: the checkout's seven, then the lifecycle operations after it.
STEPS = (*names.CHECKOUT_STEPS, names.PAY_ORDER, names.CANCEL_ORDER, names.CLOSE_UNPAID_ORDER)


class FaultRule(models.Model):
    """A fault switched on at run time for one step: every process of the shop reads these rows."""

    class Kind(models.TextChoices):
        ERROR = "error"  # the step raises the injected fault at its end; its transaction rolls back
        DELAY = "delay"  # the step sleeps ``milliseconds`` inside its span, before its work
        HOLD = "hold"  # the step sleeps ``milliseconds`` at its end, still holding its transaction's locks

    step = models.CharField(max_length=40, unique=True, choices=[(step, step) for step in STEPS])
    kind = models.CharField(max_length=10, choices=Kind.choices)
    milliseconds = models.PositiveIntegerField(default=0, help_text="delay or hold; 0 for an error")
    rate = models.PositiveSmallIntegerField(default=100, help_text="percent of the step's calls hit (1-100)")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: until cleared")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["step"]
        constraints = [
            models.CheckConstraint(condition=models.Q(rate__gte=1, rate__lte=100), name="faultrule_rate_percent"),
        ]

    def __str__(self) -> str:
        return describe(step=self.step, kind=self.kind, milliseconds=self.milliseconds, rate=self.rate)


def describe(*, step: str, kind: str, milliseconds: int, rate: int) -> str:
    """Name a rule in one line, as ``faults list``, the admin banner and ``make run`` print it."""
    what = kind if kind == FaultRule.Kind.ERROR else f"{kind} {milliseconds} ms"
    return f"{step}: {what}" + (f" at {rate}%" if rate != 100 else "")
