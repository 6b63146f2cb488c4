"""Database helpers shared by the apps' services."""

import functools
import re
from collections.abc import Collection

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection
from django.db.models import UniqueConstraint
from django.db.transaction import TransactionManagementError
from opentelemetry import trace

# MariaDB/MySQL lock wait timeout and deadlock: InnoDB rolled the transaction back, it may run again.
LOCK_CONFLICT_ERROR_CODES = frozenset({1205, 1213})


def is_transient_lock_error(exc: OperationalError) -> bool:
    """Tell a deadlock or lock wait timeout (MariaDB/MySQL) or a busy SQLite: the same work may be retried."""
    code = exc.args[0] if exc.args else None
    return code in LOCK_CONFLICT_ERROR_CODES or "database is locked" in str(exc)


def retry_on_lock_conflict(service=None, *, unique_races: Collection[str] = ()):
    """Run ``service`` again (LOCK_CONFLICT_ATTEMPTS in all) when it lost a deadlock or a lock wait.

    Only for services that own their transaction: inside a caller's atomic block a lost lock is not
    retried, since the caller's transaction is already rolled back. A service that must never run
    nested (the checkout, cancel, the closes) opens ``transaction.atomic(durable=True)``, so a nested
    call fails at once instead of losing its retry; the others (a staff edit inside the admin's
    transaction) are retried only when they are the outermost. With ``unique_races`` (constraint
    names), also when an insert lost a race for one of those unique constraints to a concurrent request:
    that rolls back only the service's own atomic block, and the next attempt sees the winner's row.
    Each retry is an event ``retry`` on the current span.
    """
    if service is None:  # used as @retry_on_lock_conflict(unique_races=...)
        return functools.partial(retry_on_lock_conflict, unique_races=unique_races)

    @functools.wraps(service)
    def run(*args, **kwargs):
        attempts = settings.LOCK_CONFLICT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                return service(*args, **kwargs)
            except OperationalError as exc:
                if connection.in_atomic_block or not is_transient_lock_error(exc) or attempt == attempts:
                    raise
                _note_retry(attempt, exc)
            except IntegrityError as exc:
                if violated_constraint(exc) not in unique_races or attempt == attempts:
                    raise
                _note_retry(attempt, exc)

    return run


def _note_retry(attempt: int, exc: Exception) -> None:
    trace.get_current_span().add_event("retry", {"attempt": attempt, "reason": str(exc)[:200]})


def in_callers_transaction(step):
    """Declare ``step`` a part of its caller's transaction: called outside ``transaction.atomic()``, it raises.

    Such a step (a stock deduction, a cart clean-up) is only correct when the caller's rollback also
    undoes it, so running it on its own, in autocommit, is a programming error caught at once.
    """

    @functools.wraps(step)
    def run(*args, **kwargs):
        if not connection.in_atomic_block:
            raise TransactionManagementError(f"{step.__qualname__}() must run inside its caller's transaction.atomic()")
        return step(*args, **kwargs)

    return run


# MariaDB/MySQL: 1062 "Duplicate entry '…' for key '[table.]name'", 4025 "CONSTRAINT `name` failed for …".
# SQLite: "UNIQUE constraint failed: table.col, table.col" (columns, not the name), "CHECK constraint failed: name".
_MYSQL_CONSTRAINT = re.compile(r"for key '(?:[^']*\.)?([^'.]+)'|CONSTRAINT `([^`]+)` failed")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")


def violated_constraint(exc: IntegrityError) -> str | None:
    """Return the name of the unique or check constraint ``exc`` reports, or None if it names none (a foreign key...).

    A unique field (``unique=True``) is named after its column, as MariaDB names its index. SQLite lists a
    unique constraint's columns, which are mapped back to the constraint's name from the models, so callers
    can tell the constraint they expect (and retry it) from any other (a bug to surface, not to retry).
    """
    message = str(exc.args[-1] if exc.args else exc)
    if found := _MYSQL_CONSTRAINT.search(message) or _SQLITE_CHECK.search(message):
        return next(group for group in found.groups() if group)
    if found := _SQLITE_UNIQUE.search(message):
        return _unique_constraint_names().get(frozenset(column.strip() for column in found.group(1).split(",")))
    return None


@functools.cache
def _unique_constraint_names() -> dict[frozenset[str], str]:
    """Map {frozenset of "table.column"} to the constraint name, for each unique field and UniqueConstraint."""
    names: dict[frozenset[str], str] = {}
    for model in apps.get_models():
        table = model._meta.db_table
        for field in model._meta.local_fields:
            if field.unique and not field.primary_key:
                names[frozenset({f"{table}.{field.column}"})] = field.column
        for constraint in model._meta.constraints:
            if isinstance(constraint, UniqueConstraint) and constraint.fields:
                columns = {f"{table}.{model._meta.get_field(name).column}" for name in constraint.fields}
                names[frozenset(columns)] = constraint.name
    return names
