"""Tracing of the order flow: the checkout's step decorator and the span of the checkout being run."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from opentelemetry import trace

from mall.telemetry import format_span_id, format_trace_id, names
from mall.telemetry.spans import operation_span
from orders.faults import fault_point

tracer = trace.get_tracer("mall.orders")

P = ParamSpec("P")
R = TypeVar("R")

_checkout_span: ContextVar[trace.Span | None] = ContextVar("mall_checkout_span", default=None)


@contextmanager
def checkout_span(*, user_id: int) -> Iterator[None]:
    """Run a checkout in its ``create_order`` span, the one the order row names (``checkout_span_ids``)."""
    with operation_span(tracer, names.CREATE_ORDER, attributes={names.USER_ID: str(user_id)}) as span:
        token = _checkout_span.set(span)
        try:
            yield
        finally:
            _checkout_span.reset(token)


def checkout_span_ids() -> tuple[str, str]:
    """Return the hex trace and span id of the current checkout's ``create_order`` span ("" if untraced).

    Read where the order row is written (inside the ``save_order`` step, whose own span is current):
    the timeout's close links to the checkout, not to one of its steps.
    """
    span = _checkout_span.get() or trace.get_current_span()
    return format_trace_id(span), format_span_id(span)


def checkout_step(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make a function a checkout step (``names.CHECKOUT_STEPS``): its own span under ``create_order``, and
    its fault point (``orders.faults.fault_point``), which fails the step at its end when told to."""
    if name not in names.CHECKOUT_STEPS:
        raise ValueError(f"{name!r} is not a checkout step of the contract")

    def decorate(step: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(step)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with operation_span(tracer, name), fault_point(name):
                return step(*args, **kwargs)

        return run

    return decorate


def name_order(order) -> None:
    """Put the order's number and id on the current span: a search by mall.order.no finds every trace of an order."""
    span = trace.get_current_span()
    span.set_attribute(names.ORDER_NO, order.order_no)
    span.set_attribute(names.ORDER_ID, order.pk)
