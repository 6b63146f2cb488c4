"""Traces of the payment-timeout tasks (``orders.tasks``, ``orders.timeouts``).

A task run is a trace of its own, of kind CONSUMER (django-q2 delivered it). Every order closed gets a span
``close_unpaid_order`` linked to the order's ``create_order`` span (``links.checkout_links``), so that the
close is found from the checkout and the other way round, and a search by ``mall.order.no`` finds both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from mall.telemetry import format_trace_id, names, new_root_context
from mall.telemetry.links import checkout_links
from mall.telemetry.spans import mark_failure

tracer = trace.get_tracer("mall.orders.tasks")


class ClosedOrderIds(Protocol):
    """What a close span names of an order (``orders.services.ClosedOrder``): its ids and its checkout's span."""

    id: int
    order_no: str
    trace_id: str
    span_id: str


def task_span(name: str, attributes: Mapping[str, AttributeValue] | None = None):
    """``with task_span(name) as span``: the span of one task run, the root of a new trace."""
    return tracer.start_as_current_span(name, context=new_root_context(), kind=SpanKind.CONSUMER, attributes=attributes)


def link_to_checkout(span: trace.Span, *, trace_id: str, span_id: str, traceparent: str = "") -> None:
    """Link ``span`` to the order's create_order span (``links.checkout_links``), if the checkout was traced."""
    for link in checkout_links(trace_id=trace_id, span_id=span_id, traceparent=traceparent):
        span.add_link(link.context, link.attributes)


def start_close_span(
    order: ClosedOrderIds,
    *,
    context: Context,
    actor: str,
    start_time: int,
    kind: SpanKind = SpanKind.INTERNAL,
    **attributes: AttributeValue,
) -> trace.Span:
    """A ``close_unpaid_order`` span for an order a batch closed, linked to the order's create_order span."""
    return tracer.start_span(
        names.CLOSE_UNPAID_ORDER,
        context=context,
        kind=kind,
        links=checkout_links(trace_id=order.trace_id, span_id=order.span_id),
        attributes={
            names.ORDER_ID: order.id,
            names.ORDER_NO: order.order_no,
            names.ORDER_OUTCOME: "closed",
            names.ORDER_ACTOR: actor,
            **attributes,
        },
        start_time=start_time,
    )


def record_batch_close_spans(
    batch: Sequence[ClosedOrderIds], *, batch_span: trace.Span, actor: str, begun_ns: int, committed_ns: int
) -> None:
    """A ``close_unpaid_order`` span per order of a committed batch, so every order stays followable.

    Children of the batch's span, timed as the batch's transaction (begin → commit): made after the
    commit, they have no database work and no children of their own.
    """
    parent = trace.set_span_in_context(batch_span)
    for order in batch:
        span = start_close_span(order, context=parent, actor=actor, start_time=begun_ns)
        span.end(end_time=committed_ns)


class CloseTraces:
    """Each order of a batch in its own trace ``close_unpaid_order``, naming the task's trace.

    ``start`` is given the batch once it is locked and returns each order's trace id, so that the order's
    ``closed`` event can name it (``orders.services.close_overdue_batch``'s ``trace_closes``). The spans
    end after the commit (``end``), or are marked failed if the batch is rolled back (``fail``); a
    retried batch starts new ones.
    """

    def __init__(self, *, task_trace_id: str, actor: str):
        self.task_trace_id = task_trace_id
        self.actor = actor
        self.spans: dict[int, trace.Span] = {}

    def start(self, batch: Sequence[ClosedOrderIds]) -> dict[int, str]:
        self.fail(RuntimeError("the batch was retried"))  # spans of an earlier, rolled back attempt
        begun_ns = time.time_ns()
        for order in batch:
            self.spans[order.id] = start_close_span(
                order,
                context=new_root_context(),
                kind=SpanKind.CONSUMER,
                actor=self.actor,
                start_time=begun_ns,
                **{names.TIMEOUT_TASK_TRACE_ID: self.task_trace_id},
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
