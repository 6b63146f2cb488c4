"""Span contexts carried between processes, links between traces, and URLs that open a trace."""

import json
from urllib.parse import quote, urlencode

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mall.telemetry.names import ORDER_NO


def span_context_from_traceparent(traceparent: str) -> SpanContext | None:
    """Parse the span a ``traceparent`` names, or None if it is empty or invalid."""
    if not traceparent:
        return None
    context = trace.get_current_span(
        TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    ).get_span_context()
    return context if context.is_valid else None


def stored_span_context(trace_id: str, span_id: str) -> SpanContext | None:
    """Rebuild a span stored as hex ids (e.g. an order's create_order span), or None if there is none."""
    if not (trace_id and span_id):
        return None
    try:
        return SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    except ValueError:
        return None


# --- where a trace opens: Jaeger when JAEGER_UI_URL is set, else the built-in view when the store is on


def trace_url(trace_id: str) -> str | None:
    """Return the URL of one trace, or None when no viewer has it (no Jaeger configured, store off)."""
    from django.conf import settings
    from django.urls import reverse

    if not trace_id:
        return None
    if settings.JAEGER_UI_URL:
        return f"{settings.JAEGER_UI_URL}/trace/{trace_id}"
    if settings.MALL_TRACE_STORE:
        return reverse("trace-detail", args=[trace_id])
    return None


def order_traces_url(order_no: str) -> str | None:
    """Return the URL of every trace of an order: a Jaeger search by tag mall.order.no, or the built-in list by it."""
    from django.conf import settings
    from django.urls import reverse

    if settings.JAEGER_UI_URL:
        query = urlencode({"service": _service_name(), "tags": json.dumps({ORDER_NO: order_no})})
        return f"{settings.JAEGER_UI_URL}/search?{query}"
    if settings.MALL_TRACE_STORE:
        return f"{reverse('trace-list')}?order_no={quote(order_no)}"
    return None


def _service_name() -> str:
    resource = getattr(trace.get_tracer_provider(), "resource", None)
    return str(resource.attributes.get("service.name", "mall")) if resource is not None else "mall"
