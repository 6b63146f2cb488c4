"""``manage.py grpcserver``: the order service over gRPC (``mall.order.v1.Order``), as the original's order-srv.

Binds ``settings.MALL_GRPC_BIND`` (default 127.0.0.1:9500) with ``settings.MALL_GRPC_THREADS`` worker
threads. Every call is traced by opentelemetry-instrumentation-grpc's server interceptor. The standard
health service answers SERVING; server reflection is on only with DEBUG. SIGTERM (or SIGINT) stops taking
calls, lets the calls in flight finish (``settings.MALL_GRPC_GRACE`` seconds at most), then flushes spans.
"""

import logging
import signal
import threading
from concurrent import futures

import grpc
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mall.telemetry import flush_telemetry, grpc_server_interceptor
from orders.grpc import order_pb2
from orders.grpc.servicer import OrderServicer, order_service_handler

logger = logging.getLogger("mall.grpc")

ORDER_SERVICE = order_pb2.DESCRIPTOR.services_by_name["Order"].full_name


def build_server(*, bind: str, threads: int) -> tuple[grpc.Server, health.HealthServicer]:
    """Build a gRPC server with the order, health (and with DEBUG reflection) services, bound to ``bind``."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mall-grpc"),
        interceptors=[grpc_server_interceptor()],
        # Messages as large as the REST API accepts bodies; larger ones are refused by gRPC itself.
        options=[("grpc.max_receive_message_length", settings.DATA_UPLOAD_MAX_MEMORY_SIZE)],
    )
    server.add_generic_rpc_handlers((order_service_handler(OrderServicer()),))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", ORDER_SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    if settings.DEBUG:
        from grpc_reflection.v1alpha import reflection

        reflection.enable_server_reflection(
            (ORDER_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
    try:
        port = server.add_insecure_port(bind)
    except RuntimeError:
        port = 0
    if not port:
        raise CommandError(f"MALL_GRPC_BIND={bind!r}: cannot listen there (in use or not an address of this host)")
    return server, health_servicer


class Command(BaseCommand):
    help = "Serve the order service over gRPC (mall.order.v1.Order) on MALL_GRPC_BIND (default 127.0.0.1:9500)."

    def handle(self, *args, **options):
        bind, threads, grace = settings.MALL_GRPC_BIND, settings.MALL_GRPC_THREADS, settings.MALL_GRPC_GRACE
        server, health_servicer = build_server(bind=bind, threads=threads)
        stop_requested = threading.Event()

        def request_stop(signum, _frame):
            stop_requested.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        server.start()
        reflection = ", reflection on (DEBUG)" if settings.DEBUG else ""
        self.stdout.write(f"gRPC order service {ORDER_SERVICE} listening on {bind} ({threads} threads{reflection})")
        self.stdout.flush()
        while not stop_requested.wait(3600):
            pass
        self.stdout.write(f"stopping: calls in flight get up to {grace} s to finish")
        self.stdout.flush()
        health_servicer.enter_graceful_shutdown()
        server.stop(grace).wait()
        flush_telemetry(timeout_millis=5000)
        self.stdout.write("gRPC order service stopped")
