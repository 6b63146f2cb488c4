"""Spans of the shop's operations: a refusal (a 4xx domain error) is an outcome, not a span error."""

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from mall.errors import DomainError
from mall.telemetry.diet import never_recorded_here
from mall.telemetry.names import REFUSAL_CODE


def is_refusal(exc: BaseException) -> bool:
    """A business rule said no: the client's answer, not a fault of the shop."""
    return isinstance(exc, DomainError) and not exc.fault


def mark_failure(span: trace.Span, exc: BaseException) -> None:
    """A refusal: attribute ``mall.refusal.code``, status left UNSET. A fault: exception event and ERROR."""
    if is_refusal(exc):
        span.set_attribute(REFUSAL_CODE, exc.code)
        return
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


@contextmanager
def operation_span(tracer: trace.Tracer, name: str, **kwargs) -> Iterator[trace.Span]:
    """``tracer.start_as_current_span(name)`` whose exceptions are classified by ``mark_failure``.

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


def current_trace_id() -> str:
    """The 32-hex trace id of the current span, "" when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
