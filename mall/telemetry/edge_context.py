"""How far the shop trusts a caller's ``traceparent`` (``MALL_TRACEPARENT``): continue its trace, or only link to it.

``trust`` (the default): an incoming request or gRPC call continues the caller's trace, with the caller's
sampling decision when the sampler is parent-based. Right for internal callers and the load tool, whose
client spans are the shop's parents.

``link``: every incoming request starts a new trace, sampled by the shop's own sampler as if no header had
come, and its server span carries a span link to the caller's span. A caller then neither forces its
requests into the traces nor chooses the trace id stored on an order: right for a public endpoint.

The hook is the global propagator, which both the Django middleware and the gRPC server interceptor extract
with: ``EdgeTrustPropagator`` hands them a context without a parent span, the caller's span context kept
aside under a context key, and ``LinkToCaller`` (a span processor) adds the link when the root span starts.
A link added after the start is not seen by the sampler, which is the point. Internal carriers (a task's
stored ``traceparent``, mall/telemetry/links.py) are read with the W3C propagator directly, not through here.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace import SpanProcessor

TRUST = "trust"
LINK = "link"
MODES = {TRUST, LINK}

LINK_ATTRIBUTES = {"mall.link": "caller"}  # tells the caller's link from others (a task's link to its checkout)

_CALLER = otel_context.create_key("mall.edge.caller")


def traceparent_mode() -> str:
    """Return ``settings.MALL_TRACEPARENT`` (read per request, so a test or a reload may change it)."""
    from django.conf import settings

    return getattr(settings, "MALL_TRACEPARENT", TRUST)


class EdgeTrustPropagator(TextMapPropagator):
    """The configured propagator, whose extracted caller span becomes a link instead of a parent under ``link``."""

    def __init__(self, delegate: TextMapPropagator):
        self._delegate = delegate

    def extract(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> otel_context.Context:
        extracted = self._delegate.extract(carrier, context=context, getter=getter)
        if traceparent_mode() != LINK:
            return extracted
        caller = trace.get_current_span(extracted).get_span_context()
        if not (caller.is_valid and caller.is_remote):
            return extracted
        # An invalid current span makes the next span a root: a new trace id, the sampler's own decision.
        unparented = trace.set_span_in_context(trace.INVALID_SPAN, extracted)
        return otel_context.set_value(_CALLER, caller, unparented)

    def inject(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        self._delegate.inject(carrier, context=context, setter=setter)

    @property
    def fields(self) -> set[str]:
        return self._delegate.fields


class LinkToCaller(SpanProcessor):
    """Adds the link to the caller's span that ``EdgeTrustPropagator`` kept aside, on the root span it started."""

    def on_start(self, span, parent_context: otel_context.Context | None = None) -> None:
        if span.parent is not None:  # children of the server span: the link is on their root already
            return
        caller = otel_context.get_value(_CALLER, parent_context)
        if caller is not None:
            span.add_link(caller, LINK_ATTRIBUTES)


def install_edge_trust(tracer_provider) -> None:
    """Wrap the global propagator (once) and add ``LinkToCaller`` to ``tracer_provider``."""
    current = propagate.get_global_textmap()
    if not isinstance(current, EdgeTrustPropagator):
        propagate.set_global_textmap(EdgeTrustPropagator(current))
    tracer_provider.add_span_processor(LinkToCaller())
