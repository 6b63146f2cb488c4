"""OpenTelemetry set-up for every mall process (web, worker, management commands), done once.

Configured by the standard variables: ``OTEL_SERVICE_NAME`` (default ``mall``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``(``_ARG``), ``OTEL_SDK_DISABLED``,
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (otlp | console | none) and the
``OTEL_EXPORTER_OTLP_*`` family. With no exporter variable set, data is exported over OTLP
only when an OTLP endpoint is configured, so a service without a collector logs no export errors.
"""

from __future__ import annotations

import functools
import logging
import os
import threading

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    _get_from_env_or_default,
)
from opentelemetry.trace import SpanKind

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "mall"
# Statements that the DB-API instrumentors name their spans after.
_SQL_VERBS = frozenset(
    "SELECT INSERT UPDATE DELETE REPLACE WITH BEGIN COMMIT ROLLBACK SAVEPOINT RELEASE"  # noqa: SIM905
    " SET SHOW PRAGMA CREATE ALTER DROP TRUNCATE LOCK UNLOCK".split()
)

_lock = threading.Lock()
_configured = False


class DropOrphanDbSpans(Sampler):
    """Drop DB client spans that have no parent (the task broker's polling, start-up queries).

    Every statement the service runs on behalf of a request or a task has a parent span; a root
    SELECT is the ORM broker polling its queue several times a second, which would flood the
    backend with one-span traces. Everything else is decided by the configured sampler.
    """

    def __init__(self, delegate: Sampler):
        self._delegate = delegate

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        # Cheapest tests first: this runs for every span of every request.
        if (
            kind is SpanKind.CLIENT
            and name.upper() in _SQL_VERBS
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"DropOrphanDbSpans{{{self._delegate.get_description()}}}"


def _exporter_choice(signal: str) -> str:
    """otlp | console | none for ``signal`` ("TRACES" or "METRICS")."""
    chosen = os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower()
    if chosen:
        return chosen.split(",")[0].strip()
    has_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
    )
    return "otlp" if has_endpoint else "none"


def _otlp_protocol(signal: str) -> str:
    return (
        (
            os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "grpc"
        )
        .strip()
        .lower()
    )


def build_span_exporter():
    """The span exporter chosen by ``OTEL_TRACES_EXPORTER`` and the OTLP variables, or None."""
    choice = _exporter_choice("TRACES")
    if choice == "console":
        return ConsoleSpanExporter()
    if choice != "otlp":
        return None
    if _otlp_protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def _metric_readers() -> list:
    choice = _exporter_choice("METRICS")
    if choice == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        exporter = ConsoleMetricExporter()
    elif choice == "otlp":
        if _otlp_protocol("METRICS") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        exporter = OTLPMetricExporter()
    else:
        return []
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    return [PeriodicExportingMetricReader(exporter)]


def build_sampler() -> Sampler:
    """The sampler named by ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (SDK default:
    parentbased_always_on), never sampling the task broker's orphan DB polling."""
    return DropOrphanDbSpans(_get_from_env_or_default())


def _parent_decides(sampler: Sampler) -> bool:
    from mall.telemetry.diet import parent_decides

    return parent_decides(sampler._delegate if isinstance(sampler, DropOrphanDbSpans) else sampler)


def build_resource(default_service_name: str = DEFAULT_SERVICE_NAME) -> Resource:
    """The resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, named ``default_service_name``
    when they name no service."""
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": default_service_name}))
    return resource


def configure_telemetry(*, metric_readers: list | None = None, trace_store: bool | None = None) -> None:
    """Install the tracer and meter providers and the Django/DB instrumentation, once per process.

    With ``trace_store`` (default: ``settings.MALL_TRACE_STORE``) finished spans are also kept in the
    built-in trace store (``traces.store``) for the staff trace view.

    Safe to call from every entry point: later calls return at once. Under gunicorn it runs in
    each worker when ``mall.wsgi`` is imported (no ``--preload``), so exporter threads and gRPC
    channels are created after the fork.
    """
    global _configured
    with _lock:
        if _configured:
            return
        _configured = True

    resource = build_resource()
    sampler = build_sampler()
    tracer_provider = TracerProvider(resource=resource, sampler=sampler)
    from mall.telemetry.edge_context import install_edge_trust

    install_edge_trust(tracer_provider)  # MALL_TRACEPARENT: continue a caller's trace, or only link to it
    tracer_provider.add_span_processor(_span_processor(build_span_exporter(), trace_store=trace_store))
    trace.set_tracer_provider(tracer_provider)

    from opentelemetry.sdk.metrics import MeterProvider

    readers = _metric_readers() + list(metric_readers or [])
    if readers:  # with none, the API's no-op instruments stay: nothing recorded that nobody collects
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))

    from opentelemetry.instrumentation.propagators import (
        TraceResponsePropagator,
        set_global_response_propagator,
    )

    set_global_response_propagator(TraceResponsePropagator())
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    from mall.telemetry.excluded import excluded_urls

    DjangoInstrumentor().instrument(is_sql_commentor_enabled=_sqlcommenter_enabled(), excluded_urls=excluded_urls())
    _instrument_database()
    if _parent_decides(sampler):
        from mall.telemetry.diet import skip_unrecorded_children

        skip_unrecorded_children()


def _trace_store_enabled(trace_store: bool | None) -> bool:
    if trace_store is not None:
        return trace_store
    from django.conf import settings

    return settings.MALL_TRACE_STORE


def span_processor_of_another_service(exporter) -> object:
    """Return the span processor for a provider of another service in a shop process (the load tool's client
    spans): exported like the shop's, kept in the built-in store too when ``settings.MALL_TRACE_STORE`` is on,
    and under the same personal-data policy, so its traces join the shop's in the same viewers."""
    return _span_processor(exporter, trace_store=None)


def _span_processor(exporter, *, trace_store: bool | None):
    """Return one processor for ``exporter`` (its lost spans counted as ``mall.telemetry.spans.dropped``) and
    the built-in store, behind the personal-data policy."""
    processors = []
    if exporter is not None:
        from mall.telemetry.export_drops import drop_counting_processor

        processors.append(drop_counting_processor(exporter))
    if _trace_store_enabled(trace_store):
        from traces.store import trace_store_processor

        processors.append(trace_store_processor())
    return _personal_data_policy(processors)


def _personal_data_policy(processors: list):
    """All span processors behind one that removes personal data, unless ``MALL_TRACE_PERSONAL_DATA``."""
    from django.conf import settings

    from mall.telemetry.privacy import WithoutPersonalData

    if settings.MALL_TRACE_PERSONAL_DATA:
        from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor

        everything = SynchronousMultiSpanProcessor()
        for processor in processors:
            everything.add_span_processor(processor)
        return everything
    return WithoutPersonalData(processors)


def _sqlcommenter_enabled() -> bool:
    """Tell whether upstream's SQL commenter is on (``MALL_SQLCOMMENTER``, mall/settings.py).

    Only the Django instrumentor's commenter: the database instrumentors below are set up without
    theirs, so each statement carries one comment.
    """
    from django.conf import settings

    return settings.MALL_SQLCOMMENTER


def _instrument_database() -> None:
    """Make every SQL statement of the active backend a client span (no parameter values)."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine.endswith("sqlite3"):
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        SQLite3Instrumentor().instrument()
        from mall.patches import untrace_sqlite_debug_quoting

        untrace_sqlite_debug_quoting()
    elif engine.endswith("mysql"):
        from opentelemetry.instrumentation.mysqlclient import MySQLClientInstrumentor

        # Its own commenter stays off: with Django's enabled too, statements would carry two comments.
        MySQLClientInstrumentor().instrument(enable_commenter=False)


def grpc_server_interceptor():
    """The gRPC server interceptor of opentelemetry-instrumentation-grpc: a SERVER span per call named
    after its method, continuing a ``traceparent`` of the call's metadata (or linking to it: ``MALL_TRACEPARENT``,
    mall/telemetry/edge_context.py). The health service is left out
    (probes would each be a one-span trace)."""
    from opentelemetry.instrumentation.grpc import filters, server_interceptor

    return server_interceptor(filter_=filters.negate(filters.health_check()))


def instrumented_grpc_channel(channel, tracer_provider=None):
    """``channel`` through the client interceptor of opentelemetry-instrumentation-grpc: a CLIENT span per
    call, its context sent as ``traceparent`` metadata."""
    from opentelemetry.instrumentation.grpc import client_interceptor, grpcext

    return grpcext.intercept_channel(channel, client_interceptor(tracer_provider=tracer_provider))


def new_root_context() -> Context:
    """An empty context: spans started in it begin a new trace."""
    return Context()


def _span_context(of: trace.Span | trace.SpanContext) -> trace.SpanContext:
    return of if isinstance(of, trace.SpanContext) else of.get_span_context()


def format_trace_id(of: trace.Span | trace.SpanContext) -> str:
    """Return the trace id of a span (or span context, e.g. a link's) as 32 hex digits, "" when invalid."""
    context = _span_context(of)
    return format(context.trace_id, "032x") if context.is_valid else ""


def format_span_id(of: trace.Span | trace.SpanContext) -> str:
    """Return the span id of a span (or span context) as 16 hex digits, "" when invalid."""
    context = _span_context(of)
    return format(context.span_id, "016x") if context.is_valid else ""


def current_trace_id() -> str:
    """Return the 32-hex trace id of the current span, "" when nothing is traced."""
    return format_trace_id(trace.get_current_span())


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` of the current span to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:  # django.request logs a response after its server span ended
            context = getattr(getattr(record, "request", None), "span_context", context)
        if context.is_valid:
            record.trace_id = format_trace_id(context)
            record.span_id = format_span_id(context)
        else:
            record.trace_id = record.span_id = "-"
        return True


_flush_guard = threading.Lock()
_flush_in_flight: threading.Thread | None = None


def _force_flush(timeout_millis: int) -> None:
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        if hasattr(provider, "force_flush"):
            try:
                provider.force_flush(timeout_millis=timeout_millis)
            except Exception:  # an export error must never reach a task or a shutdown
                logger.debug("telemetry flush failed", exc_info=True)


def flush_telemetry(timeout_millis: int = 1000) -> bool:
    """Export what is buffered now, waiting at most ``timeout_millis``; True if it all left in time.

    A hard deadline: the SDK's ``force_flush`` does not bound itself against a refused or hanging
    collector (the OTLP exporter retries up to ``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s), so it runs in a
    helper thread and the caller stops waiting at the deadline. While an earlier flush is still stuck
    on the collector, no new one starts and the call returns at once: a task worker loses at most
    ``timeout_millis`` once per stuck export, not on every task. Never call it on a request's path.
    """
    global _flush_in_flight
    with _flush_guard:
        if _flush_in_flight is not None and _flush_in_flight.is_alive():
            return False
        flush = threading.Thread(target=_force_flush, args=(timeout_millis,), name="mall-telemetry-flush", daemon=True)
        _flush_in_flight = flush
        flush.start()
    flush.join(timeout_millis / 1000)
    return not flush.is_alive()


def flush_telemetry_at_process_exit(timeout_millis: int = 5000) -> None:
    """In a forked worker that ends with ``os._exit`` (django-q2): flush, bounded, when it exits.

    multiprocessing runs its finalizers before ``os._exit`` (a recycled worker, a stopping cluster);
    a killed worker loses at most what the batch processor had not sent yet.
    """
    from multiprocessing.util import Finalize

    Finalize(None, flush_telemetry, kwargs={"timeout_millis": timeout_millis}, exitpriority=10)


def flushes_telemetry(task):
    """Flush telemetry (bounded, ``flush_telemetry``) when ``task`` returns or raises.

    For django-q2 tasks: its workers end with ``os._exit``, so nothing is flushed when they exit.
    """

    @functools.wraps(task)
    def run(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        finally:
            flush_telemetry()

    return run
