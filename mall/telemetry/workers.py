"""Telemetry in django-q2's task workers (``python manage.py qcluster``); the web workers' is in gunicorn.conf.py.

The cluster forks its workers from a process that ``manage.py`` already set up: the SDK's
at-fork hooks restart the span/metric export threads in each child, so this receiver is a no-op
there. It matters when the cluster was not started through ``manage.py`` (``django-admin
qcluster``) or on platforms that spawn instead of fork: each worker then sets telemetry up
itself before its first task. Workers end with ``os._exit``: each task flushes with a short hard
deadline (``mall.telemetry.flushes_telemetry``) and a finalizer flushes, bounded, when the worker exits.
"""

from django.dispatch import receiver
from django_q.signals import post_spawn

from mall.telemetry import configure_telemetry, flush_telemetry_at_process_exit


@receiver(post_spawn, dispatch_uid="mall-worker-telemetry")
def set_up_worker_telemetry(sender, proc_name: str, **kwargs) -> None:
    configure_telemetry()  # idempotent: returns at once when inherited from the parent
    flush_telemetry_at_process_exit()  # tasks flush with a short deadline; the rest leaves at exit
