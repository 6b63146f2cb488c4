"""Database helpers shared by the apps' services."""

import functools
import re

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection
from django.db.models import UniqueConstraint
from django.db.transaction import TransactionManagementError

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
    """The name of the unique or check constraint ``exc`` reports, or None if it names none (a foreign key...).

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
    """{frozenset of "table.column"}: constraint name, for every unique field and UniqueConstraint of the models."""
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
