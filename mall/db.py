"""Database helpers shared by the apps' services."""

import functools

from django.conf import settings
from django.db import OperationalError, connection

_TRANSIENT_MYSQL_ERRORS = {1205, 1213}  # lock wait timeout, deadlock: InnoDB rolled the transaction back


def is_transient_lock_error(exc: OperationalError) -> bool:
    """A deadlock or lock wait timeout (MariaDB/MySQL) or a busy SQLite: the same work may be retried."""
    code = exc.args[0] if exc.args else None
    return code in _TRANSIENT_MYSQL_ERRORS or "database is locked" in str(exc)


def retry_on_lock_conflict(service):
    """Run ``service`` again (up to CHECKOUT_MAX_ATTEMPTS) when it lost a deadlock or a lock wait.

    Only for services that own their transaction: inside a caller's atomic block nothing is retried,
    since the outer transaction is already rolled back.
    """

    @functools.wraps(service)
    def run(*args, **kwargs):
        for attempt in range(1, settings.CHECKOUT_MAX_ATTEMPTS + 1):
            try:
                return service(*args, **kwargs)
            except OperationalError as exc:
                if connection.in_atomic_block or not is_transient_lock_error(exc):
                    raise
                if attempt == settings.CHECKOUT_MAX_ATTEMPTS:
                    raise

    return run
