"""What the instrumentation packages would compute for nothing, left out (see docs/PERFORMANCE.md, "diet").

The DB-API instrumentation (sqlite3, mysqlclient) starts a span for every statement, even under a parent
that is not recorded: it parses the statement for the span's name, asks the sampler, creates a
non-recording span and attaches it to the context, only for the sampler to drop it. Under a parent-based
(or always_off) sampler such a statement can never be recorded, so it runs straight through (the patch
``mall.patches.skip_statements_outside_recorded_spans``); likewise the operation spans of
``mall.telemetry.spans.operation_span`` under such a parent.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler


def parent_decides(sampler: Sampler) -> bool:
    """Tell whether the parent decides; False if a child of an unrecorded parent may be sampled: a bare ``always_on``
    (the parent-based samplers, ``always_off`` and ``traceidratio``, which decides a trace's spans alike, never do)."""
    return sampler is not ALWAYS_ON


# Set by configure_telemetry when the sampler is one of those: spans under an unrecorded parent are skipped.
skip_under_unrecorded_parent = False


def never_recorded_here() -> trace.Span | None:
    """Return the current span when a child of it could never be recorded (its trace is not sampled), else None."""
    if not skip_under_unrecorded_parent:
        return None
    current = trace.get_current_span()
    if current.is_recording() or not current.get_span_context().is_valid:
        return None  # recorded, or no parent at all: the sampler decides a new root
    return current


def skip_unrecorded_children() -> None:
    """Skip operation spans under an unrecorded parent (see ``never_recorded_here``) and their statements."""
    from mall.patches import skip_statements_outside_recorded_spans

    global skip_under_unrecorded_parent
    skip_under_unrecorded_parent = True
    skip_statements_outside_recorded_spans()
