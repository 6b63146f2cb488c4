"""Receivers of django-q2's signals: each task worker, when it starts, repairs the safety net's schedule."""

import logging

from django.db import DatabaseError, connection
from django.dispatch import receiver
from django_q.signals import post_spawn

from orders.expiry import ensure_safety_net_schedule

logger = logging.getLogger(__name__)


@receiver(post_spawn, dispatch_uid="mall-safety-net-schedule")
def repair_safety_net_schedule(sender, proc_name: str, **kwargs) -> None:
    """Make sure, as every worker starts, that the every-minute sweep schedule exists (re-created if deleted)."""
    try:
        ensure_safety_net_schedule()
    except DatabaseError:  # the database is down right now: the next worker start tries again
        logger.exception("could not check the safety net schedule")
    finally:
        connection.close()  # tasks open their own; none is held between them
