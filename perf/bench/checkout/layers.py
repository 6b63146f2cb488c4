"""In-process CPU cost of one cart + checkout cycle per tracing configuration, and where it goes.

    python -m perf layers --sampler parentbased_always_on [--profile]   # one configuration per process

Each configuration runs in its own process (the OpenTelemetry providers are set once per process), on its
own SQLite database, through Django's test client (no HTTP server, no other load): CPU seconds per cycle
(``time.process_time``), and with ``--profile`` the cProfile functions that cost the most, grouped by layer.
Spans go through a BatchSpanProcessor to an OTLP exporter that encodes each batch and sends it nowhere,
so the export encoding is counted as it is in the shop.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LAYERS = {  # substring of a profiled function's file → layer
    "instrumentation/django": "Django middleware (OTel)",
    "instrumentation/wsgi": "Django middleware (OTel)",
    "instrumentation/dbapi": "DB-API instrumentation",
    "opentelemetry/sdk/trace": "SDK spans",
    "opentelemetry/sdk/metrics": "metrics recording",
    "exporter/otlp": "export encoding",
    "opentelemetry/trace": "API spans",
    "opentelemetry/context": "context",
    "mall/telemetry": "mall.telemetry",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sampler", default="", help="OTEL_TRACES_SAMPLER; empty: OTEL_SDK_DISABLED (untraced)")
    parser.add_argument("--sampler-arg", default="")
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--database-url", help="its own database (dropped first; name with 'bench'); default: SQLite")
    parser.add_argument("--profile", action="store_true")
    return parser.parse_args(argv)


def _environment(args) -> None:
    directory = Path(tempfile.mkdtemp(prefix="mall_layers_bench_"))
    os.environ.update(
        DATABASE_URL=args.database_url or f"sqlite:///{directory / 'bench.sqlite3'}",
        DJANGO_SETTINGS_MODULE="mall.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_SECRET_KEY="layers-" + "x" * 60,
        CHECKOUT_THROTTLE_RATE="off",
        MALL_LOGIN_THROTTLE_RATE="off",
        MALL_LOG_LEVEL="WARNING",
        ORDER_PAY_TIMEOUT=str(7 * 24 * 3600),
    )
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]
    if not args.sampler:
        os.environ["OTEL_SDK_DISABLED"] = "true"
        return
    os.environ.update(
        OTEL_TRACES_SAMPLER=args.sampler,
        OTEL_TRACES_SAMPLER_ARG=args.sampler_arg,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",  # replaced below: encodes, sends nothing
        OTEL_METRICS_EXPORTER="none",
    )


def _encode_only() -> None:
    """Keep the OTLP exporter's encoding, drop its network send."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    def export(self, spans):
        encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS

    OTLPSpanExporter.export = export


def main(argv=None) -> int:
    args = parse_args(argv)
    _environment(args)
    _encode_only()
    if args.database_url:
        from perf.bench.common.environment import recreate_database

        recreate_database(args.database_url)
    from mall.telemetry import configure_telemetry

    configure_telemetry(trace_store=False)  # before Django, as mall.wsgi does: the driver is instrumented
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.test import Client

    from perf.bench.checkout.statements import CHECKOUT_BODY, new_buyer, new_goods

    _, token = new_buyer(prefix="layers")
    goods = new_goods(stock=10**9, prefix="layers")
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")

    def cycle():
        for path, body in (("/api/cart/", {"goods": goods.pk, "nums": 1}), ("/api/orders/", CHECKOUT_BODY)):
            response = client.post(path, body, content_type="application/json")
            if response.status_code != 201:
                raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")

    for _ in range(30):
        cycle()
    profiler = cProfile.Profile() if args.profile else None
    started = time.process_time()
    if profiler:
        profiler.enable()
    for _ in range(args.cycles):
        cycle()
    if profiler:
        profiler.disable()
    cpu = time.process_time() - started
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()
    label = args.sampler or "untraced"
    print(f"{label} {args.sampler_arg}: {cpu / args.cycles * 1000:.2f} ms CPU per cycle ({args.cycles} cycles)")
    if profiler:
        stats = pstats.Stats(profiler)
        # Calls are deterministic where CPU time on a shared machine is not: the diet's effect in one number.
        print(f"  {stats.total_calls / args.cycles:.0f} Python function calls per cycle (profiled)")
        totals: dict[str, float] = {}
        for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():
            layer = next((name for key, name in LAYERS.items() if key in filename), None)
            if layer:
                totals[layer] = totals.get(layer, 0.0) + tottime
        for layer, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            print(f"  {layer:<28} {seconds / args.cycles * 1e6:8.0f} µs own time per cycle (profiled)")
        stats.sort_stats(os.environ.get("LAYERS_SORT", "tottime")).print_stats(os.environ.get("LAYERS_FILTER", ""), 30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
