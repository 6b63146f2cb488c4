"""django-q2's schedule table as the shop uses it: the safety net's schedule repairs itself, and ids past 32 bits.

The admin lets staff delete django-q2 schedules; without the safety net's (``close-overdue-orders``, every
minute), an order whose timeout was lost (Redis broker, a killed worker) would stay pending and hold its
stock for good. Every worker re-creates it when it starts (``orders.signals``), and ``manage.py check
--database default`` reports it missing (a warning, so that ``migrate`` still runs; ``--fail-level
WARNING`` for monitoring).

Migration orders/0005 widens ``django_q_schedule.id`` to BIGINT, but django_q's model still declares an
``AutoField``, and Django 5 answers a lookup of an integer beyond its field's range with an empty
result: past id 2^31, ``Schedule.objects.get(pk=…)`` finds nothing and saving a schedule (the
scheduler moving a repeating one on, an admin edit) fails, which rolls the scheduler's whole pass
back, every pass. ``mall.patches.use_64_bit_schedule_ids`` makes the ORM treat the column as what it now is, at run
time only: the field's class and its migration state are django_q's and stay as they are
(``makemigrations`` stays clean).
"""

import logging
from datetime import timedelta

from django.core import checks
from django.db import DatabaseError
from django.utils import timezone
from django_q.models import Schedule

logger = logging.getLogger(__name__)

SAFETY_NET_NAME = "close-overdue-orders"  # as created by migration 0002_safety_net_schedule
SAFETY_NET_FUNC = "orders.tasks.close_overdue_orders"


def ensure_safety_net_schedule() -> bool:
    """Create the every-minute sweep schedule if it is missing; True if it was created.

    Workers starting together may both create it (django-q2's name check is not a constraint):
    each then keeps the oldest row and deletes the others, so they converge on one.
    """
    if Schedule.objects.filter(name=SAFETY_NET_NAME).exists():
        return False
    # First run a minute from now: the one-off closes due meanwhile run first (the sweep is for lost ones).
    Schedule.objects.create(
        name=SAFETY_NET_NAME,
        func=SAFETY_NET_FUNC,
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=-1,
        next_run=timezone.now() + timedelta(minutes=1),
    )
    kept = Schedule.objects.filter(name=SAFETY_NET_NAME).order_by("id").values_list("id", flat=True).first()
    Schedule.objects.filter(name=SAFETY_NET_NAME).exclude(pk=kept).delete()
    logger.warning("the safety net schedule %r was missing: re-created", SAFETY_NET_NAME)
    return True


@checks.register(checks.Tags.database)
def check_safety_net_schedule(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """``manage.py check --database default``: the sweep schedule exists (run only with a database)."""
    if not databases or "default" not in databases:
        return []
    try:
        missing = not Schedule.objects.filter(name=SAFETY_NET_NAME, func=SAFETY_NET_FUNC).exists()
    except DatabaseError:  # not migrated yet: migrate creates it
        return []
    if not missing:
        return []
    return [
        checks.Warning(
            f"The safety net schedule {SAFETY_NET_NAME!r} is missing: overdue orders whose timeout was lost "
            "stay pending and keep their stock.",
            hint="Start (or restart) a worker, `manage.py qcluster`: it re-creates the schedule.",
            id="orders.W001",
        )
    ]
