"""Change other packages' behaviour at run time: every patch of the shop, in this one module.

Each patch names its target (``PATCH_TARGETS``) and looks it up through ``patch_target``, which raises
``PatchTargetMissing`` naming the package and the attribute when an upgrade removed or renamed it: the
process fails at start-up (``apply_patches``, from ``mall.apps.MallConfig.ready``) rather than running
unpatched. Each patch is idempotent and marks its replacement with ``_mall_patch``.

- ``use_64_bit_schedule_ids`` (django-q2): always, at start-up.
- ``untrace_sqlite_debug_quoting`` (Django's SQLite backend): when ``mall.telemetry`` instruments sqlite3.
- ``skip_statements_outside_recorded_spans`` (OpenTelemetry's DB-API tracer): when the sampler lets the
  parent decide (``mall.telemetry.diet``).
"""

from __future__ import annotations

import importlib

from opentelemetry import trace

# (module, attribute path) of everything patched here.
PATCH_TARGETS = (
    ("django_q.models", "Schedule._meta.pk.get_internal_type"),
    ("django.db.backends.sqlite3.base", "DatabaseOperations._quote_params_for_last_executed_query"),
    ("opentelemetry.instrumentation.dbapi", "CursorTracer.traced_execution"),
)


class PatchTargetMissing(RuntimeError):
    """A patched attribute is gone, most likely after an upgrade of its package: review the patch."""


def patch_target(module: str, path: str) -> object:
    """Return the object the dotted ``path`` names in ``module``; raise ``PatchTargetMissing`` if it is absent."""
    found: object = importlib.import_module(module)
    for name in path.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise PatchTargetMissing(
                f"mall.patches: {module}.{path} no longer exists (upgraded package?): review the patch of it"
            ) from None
    return found


def missing_patch_targets() -> list[str]:
    """Return the ``PATCH_TARGETS`` that the installed packages no longer have, as ``module.path``."""
    missing = []
    for module, path in PATCH_TARGETS:
        try:
            patch_target(module, path)
        except PatchTargetMissing:
            missing.append(f"{module}.{path}")
    return missing


def apply_patches() -> None:
    """Check every patch's target, then apply the patches that hold in every process (called at start-up)."""
    missing = missing_patch_targets()
    if missing:
        raise PatchTargetMissing(
            f"mall.patches: {', '.join(missing)} no longer exist (upgraded package?): review their patches"
        )
    use_64_bit_schedule_ids()


def _big_auto_field() -> str:
    return "BigAutoField"


def use_64_bit_schedule_ids() -> None:
    """Let the ORM read, update and delete django-q2 schedules whose id is beyond 32 bits.

    Migration orders/0005 widens ``django_q_schedule.id`` to BIGINT, but django_q's model still declares
    an ``AutoField``, and Django answers a lookup of an integer beyond its field's range with an empty
    result (see ``orders.expiry``). Only the run-time type changes: the field's class and its migration
    state stay django_q's, so ``makemigrations`` stays clean.
    """
    from django.db.models import AutoField

    patch_target("django_q.models", "Schedule._meta.pk.get_internal_type")
    primary_key = patch_target("django_q.models", "Schedule._meta.pk")
    if not isinstance(primary_key, AutoField):  # BigAutoField is one too
        raise PatchTargetMissing(
            f"mall.patches: django_q.models.Schedule's primary key is a {type(primary_key).__name__}, "
            "no longer an AutoField: review use_64_bit_schedule_ids"
        )
    primary_key.get_internal_type = _big_auto_field


def untrace_sqlite_debug_quoting() -> None:
    """Keep Django's debug-only ``SELECT QUOTE(?), ...`` out of traces.

    With DEBUG on, Django's SQLite backend renders each statement's parameters for its query log by
    running ``SELECT QUOTE(?)...`` on the driver connection; instrumented, each would be a span nobody
    asked for. Run it with instrumentation suppressed.
    """
    from django.db.backends.sqlite3.base import DatabaseOperations  # via base: operations alone is a cycle
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    quote = patch_target("django.db.backends.sqlite3.base", "DatabaseOperations._quote_params_for_last_executed_query")
    if getattr(quote, "_mall_patch", False):
        return

    def quote_untraced(self, params):
        with suppress_instrumentation():
            return quote(self, params)

    quote_untraced._mall_patch = True
    DatabaseOperations._quote_params_for_last_executed_query = quote_untraced


def skip_statements_outside_recorded_spans() -> None:
    """Wrap the DB-API cursor tracer: a statement under no recording span is executed untraced."""
    from opentelemetry.instrumentation.dbapi import CursorTracer

    traced_execution = patch_target("opentelemetry.instrumentation.dbapi", "CursorTracer.traced_execution")
    if getattr(traced_execution, "_mall_patch", False):
        return

    def execution(self, cursor, query_method, *args, **kwargs):
        if not trace.get_current_span().is_recording():
            return query_method(*args, **kwargs)
        return traced_execution(self, cursor, query_method, *args, **kwargs)

    execution._mall_patch = True
    CursorTracer.traced_execution = execution
