"""Spans of operations whose refusals (a 4xx ``DomainError``) are an outcome, not a span error."""

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from mall.errors import DomainError
from mall.telemetry import current_trace_id  # noqa: F401 (re-exported: callers import it from here today)
from mall.telemetry.diet import never_recorded_here

REFUSAL_CODE = "mall.refusal.code"  # the 4xx code of a refused operation (the span stays UNSET)


def is_refusal(exc: BaseException) -> bool:
    """Tell a refusal (a business rule said no: the client's answer) from a fault of the service."""
    return isinstance(exc, DomainError) and not exc.fault


def mark_failure(span: trace.Span, exc: BaseException) -> None:
    """Mark a refusal (attribute ``mall.refusal.code``, status left UNSET) or a fault (exception event, ERROR)."""
    if is_refusal(exc):
        span.set_attribute(REFUSAL_CODE, exc.code)
        return
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


@contextmanager
def operation_span(tracer: trace.Tracer, name: str, **kwargs) -> Iterator[trace.Span]:
    """Start ``tracer.start_as_current_span(name)``, its exceptions classified by ``mark_failure``.

    Under a parent whose trace is not sampled it yields that parent and starts nothing (see ``diet``)."""
    unrecorded = never_recorded_here()
    if unrecorded is not None:
        yield unrecorded
        return
    with tracer.start_as_current_span(name, record_exception=False, set_status_on_exception=False, **kwargs) as span:
        try:
            yield span
        except Exception as exc:
            mark_failure(span, exc)
            raise
