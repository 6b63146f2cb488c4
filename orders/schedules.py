"""django-q2's schedule table at one row per pending order (see migration orders/0005).

The migration widens ``django_q_schedule.id`` to BIGINT, but django_q's model still declares an
``AutoField``, and Django 5 answers a lookup of an integer beyond its field's range with an empty
result: past id 2^31, ``Schedule.objects.get(pk=…)`` finds nothing and saving a schedule (the
scheduler moving a repeating one on, an admin edit) fails, which rolls the scheduler's whole pass
back, every pass. ``use_64_bit_schedule_ids`` makes the ORM treat the
column as what it now is, at run time only: the field's class and its migration state are django_q's
and stay as they are (``makemigrations`` stays clean).
"""


def _big_auto_field() -> str:
    return "BigAutoField"


def use_64_bit_schedule_ids() -> None:
    """Let the ORM read, update and delete schedules whose id is beyond 32 bits (called at start-up)."""
    from django_q.models import Schedule

    Schedule._meta.pk.get_internal_type = _big_auto_field
