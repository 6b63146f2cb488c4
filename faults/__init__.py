"""Faults switched on while the shop runs (``manage.py faults``, the admin): errors, delays, lock holds.

The shop calls one hook, ``faults.inject(step)``, at each step boundary; rules live in one table
that every process reads at most once a second (``faults.selectors``).
"""


def inject(step: str):
    """Return the context manager applying the fault rule for ``step`` (``faults.injection.inject``)."""
    from faults.injection import inject as inject_fault  # models load only once the apps are ready

    return inject_fault(step)
