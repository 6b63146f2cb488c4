"""Start-up of every mall process (manage.py, gunicorn, qcluster): settings first, then telemetry.

A misconfiguration must reach the operator as one line naming the variable. Loaded any later,
the settings' ``ImproperlyConfigured`` can be swallowed by the instrumentation that first touches
them, and the process fails afterwards with an unrelated error (``KeyError: 'default'``).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured


@contextmanager
def exit_on_configuration_error() -> Iterator[None]:
    """Turn an ``ImproperlyConfigured`` raised inside into the one-line exit (status 1)."""
    try:
        yield
    except ImproperlyConfigured as exc:
        raise SystemExit(f"mall: configuration error: {exc}") from None


def load_settings_or_exit() -> None:
    """Import the settings now; on a configuration error, exit with one line (status 1)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mall.settings")
    from django.conf import settings

    with exit_on_configuration_error():
        settings.DATABASES  # noqa: B018 (imports the settings module)
