"""Tracing of the order flow, defined once: span names, order attribute keys (docs/api.md lists them),
the checkout's step decorator, and the spans of the payment-timeout closes.

A close task run is a trace of its own, of kind CONSUMER (django-q2 delivered it). Every order closed gets a
root span ``close_unpaid_order`` linked to the order's ``create_order`` span (``checkout_links``), so that
the close is found from the checkout and the other way round, and a search by ``mall.order.no`` finds both.
Order lifecycle event kinds and actors are the choices of ``orders.models.OrderEvent``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import AttributeValue

import faults
from mall.telemetry import format_span_id, format_trace_id, new_root_context
from mall.telemetry.links import span_context_from_traceparent, stored_span_context
from mall.telemetry.names import LINK_KIND, ORDER_NO, USER_ID
from mall.telemetry.spans import mark_failure, operation_span
from orders import metrics
from orders.models import ClosedOrder
from orders.steps import (  # noqa: F401 - the span names, re-exported: orders.steps defines them
    CANCEL_ORDER,
    CHECKOUT_STEPS,
    CLOSE_DUE_ORDERS,
    CLOSE_OVERDUE_ORDERS,
    CLOSE_UNPAID_ORDER,
    CREATE_ORDER,
    PAY_ORDER,
)

tracer = trace.get_tracer("mall.orders")
task_tracer = trace.get_tracer("mall.orders.tasks")

# --- order attribute keys (mall.order.no, the search key of every trace of an order, is mall.telemetry.names')
ORDER_ID = "mall.order.id"
ORDER_LINE_COUNT = "mall.order.line_count"
ORDER_PAY_PRICE = "mall.order.pay_price"
ORDER_REPLAYED = "mall.order.replayed"
ORDER_OUTCOME = "mall.order.outcome"  # of a close: closed | skipped_*
ORDER_ACTOR = "mall.order.actor"  # who changed the order: customer | staff | timeout | sweep
SWEEP_CLOSED = "mall.sweep.closed"
TIMEOUT_CLOSED = "mall.timeout.closed"  # orders a deadline bucket's task closed
TIMEOUT_TASK_TRACE_ID = "mall.timeout.task_trace_id"  # on a close: the trace of the task that made it

P = ParamSpec("P")
R = TypeVar("R")

_checkout_span: ContextVar[trace.Span | None] = ContextVar("mall_checkout_span", default=None)


@contextmanager
def checkout_span(*, user_id: int) -> Iterator[None]:
    """Run a checkout in its ``create_order`` span, the one the order row names (``checkout_span_ids``)."""
    with operation_span(tracer, CREATE_ORDER, attributes={USER_ID: str(user_id)}) as span:
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
    """Make a function a checkout step (``CHECKOUT_STEPS``): its own span under ``create_order``, its
    duration in ``mall.checkout.step.duration`` (``mall.step``, outcome), and its fault point
    (``faults.inject``: the fault rules in force, ``manage.py faults``, make it fail, wait or hold)."""
    if name not in CHECKOUT_STEPS:
        raise ValueError(f"{name!r} is not a checkout step of the contract")

    def decorate(step: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(step)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            started, error = time.perf_counter(), None
            try:
                # The fault point inside the timing: a step a rule holds is slow in the metric as in the trace.
                with operation_span(tracer, name), faults.inject(name):
                    return step(*args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                metrics.checkout_step_duration.record(
                    time.perf_counter() - started, {metrics.STEP: name, "outcome": metrics.step_outcome(error)}
                )

        return run

    return decorate


def name_order(order) -> None:
    """Put the order's number and id on the current span: a search by mall.order.no finds every trace of an order."""
    span = trace.get_current_span()
    span.set_attribute(ORDER_NO, order.order_no)
    span.set_attribute(ORDER_ID, order.pk)


def checkout_links(*, trace_id: str, span_id: str, traceparent: str = "") -> list[Link]:
    """Return the link from a later span of an order (its close) to the create_order span that placed it.

    That span is the one a task's ``traceparent`` names, else the one whose hex ids the order stores;
    no link if the checkout was not traced.
    """
    checkout = span_context_from_traceparent(traceparent) or stored_span_context(trace_id, span_id)
    return [Link(checkout, {LINK_KIND: CREATE_ORDER})] if checkout is not None else []


def task_span(name: str, attributes: Mapping[str, AttributeValue] | None = None):
    """Open the span of one task run, the root of a new trace: ``with task_span(name) as span``."""
    return task_tracer.start_as_current_span(
        name, context=new_root_context(), kind=SpanKind.CONSUMER, attributes=attributes
    )


def link_to_checkout(span: trace.Span, *, trace_id: str, span_id: str, traceparent: str = "") -> None:
    """Link ``span`` to the order's create_order span (``checkout_links``), if the checkout was traced."""
    for link in checkout_links(trace_id=trace_id, span_id=span_id, traceparent=traceparent):
        span.add_link(link.context, link.attributes)


def start_close_span(
    order: ClosedOrder,
    *,
    context: Context,
    actor: str,
    start_time: int,
    kind: SpanKind = SpanKind.INTERNAL,
    **attributes: AttributeValue,
) -> trace.Span:
    """Start a ``close_unpaid_order`` span for an order a batch closed, linked to the order's create_order span."""
    return task_tracer.start_span(
        CLOSE_UNPAID_ORDER,
        context=context,
        kind=kind,
        links=checkout_links(trace_id=order.trace_id, span_id=order.span_id),
        attributes={
            ORDER_ID: order.id,
            ORDER_NO: order.order_no,
            ORDER_OUTCOME: "closed",
            ORDER_ACTOR: actor,
            **attributes,
        },
        start_time=start_time,
    )


class CloseTraces:
    """Each order of a batch in its own trace ``close_unpaid_order``, naming the task's trace.

    ``start`` is given the batch once it is locked and returns each order's trace id, so that the order's
    ``closed`` event can name it (``orders.expiry.close_overdue_batch``'s ``trace_closes``). The spans
    end after the commit (``end``), or are marked failed if the batch is rolled back (``fail``); a
    retried batch starts new ones.
    """

    def __init__(self, *, task_trace_id: str, actor: str):
        self.task_trace_id = task_trace_id
        self.actor = actor
        self.spans: dict[int, trace.Span] = {}

    def start(self, batch: Sequence[ClosedOrder]) -> dict[int, str]:
        self.fail(RuntimeError("the batch was retried"))  # spans of an earlier, rolled back attempt
        begun_ns = time.time_ns()
        for order in batch:
            self.spans[order.id] = start_close_span(
                order,
                context=new_root_context(),
                kind=SpanKind.CONSUMER,
                actor=self.actor,
                start_time=begun_ns,
                **{TIMEOUT_TASK_TRACE_ID: self.task_trace_id},
            )
        return {order_id: format_trace_id(span) for order_id, span in self.spans.items()}

    def end(self) -> None:
        for span in self.spans.values():
            span.end()
        self.spans.clear()

    def fail(self, exc: BaseException) -> None:
        for span in self.spans.values():
            mark_failure(span, exc)
        self.end()
