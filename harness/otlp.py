"""Run an OTLP receiver in-process that speaks both transports the shop can be configured with.

``OtlpServer`` listens on free 127.0.0.1 ports: OTLP/gRPC (``TraceService`` and ``MetricsService``,
opentelemetry-proto's generated stubs) and OTLP/HTTP (``POST /v1/traces`` and ``/v1/metrics``, binary
protobuf, plain, gzip or deflate). It hands every export request to its callbacks: the test suite's receiver
(``tests/otlp_receiver.py``) decodes and keeps them, the bench's sink (``perf/bench/common/otlp_sink.py``) counts them.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from concurrent import futures
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

TraceRequest = trace_service_pb2.ExportTraceServiceRequest
MetricsRequest = metrics_service_pb2.ExportMetricsServiceRequest


class OtlpServer:
    """OTLP/gRPC and OTLP/HTTP on free 127.0.0.1 ports (``grpc_endpoint``, ``http_endpoint``); each export
    request goes to ``on_traces(request, transport)`` or ``on_metrics(request, transport)``, transport being
    "grpc" or "http", before it is answered (a callback that blocks is a slow collector)."""

    def __init__(
        self,
        *,
        on_traces: Callable[[TraceRequest, str], None],
        on_metrics: Callable[[MetricsRequest, str], None],
        grpc_workers: int = 4,
        grpc_port: int = 0,  # 0: a free one; a given one: a collector coming back where it was
    ) -> None:
        self.on_traces, self.on_metrics, self.grpc_workers = on_traces, on_metrics, grpc_workers
        self.grpc_port = grpc_port
        self.grpc_endpoint = ""
        self.http_endpoint = ""
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None

    def endpoint_for(self, protocol: str) -> str:
        """The endpoint for ``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``grpc`` or ``http/protobuf``."""
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint

    def start(self):
        self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.grpc_workers))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._grpc_server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self), self._grpc_server)
        port = self._grpc_server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        self._grpc_server.start()
        self.grpc_endpoint = f"http://127.0.0.1:{port}"
        self._http_server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self))
        self._http_server.daemon_threads = True
        threading.Thread(target=self._http_server.serve_forever, name="otlp-http", daemon=True).start()
        self.http_endpoint = f"http://127.0.0.1:{self._http_server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, server: OtlpServer):
        self.server = server

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        self.server.on_traces(request, "grpc")
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, server: OtlpServer):
        self.server = server

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        self.server.on_metrics(request, "grpc")
        return metrics_service_pb2.ExportMetricsServiceResponse()


def _http_handler(server: OtlpServer) -> type[BaseHTTPRequestHandler]:
    class OtlpHttpHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real collector

        def do_POST(self):  # noqa: N802 (http.server method name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/x-protobuf":
                return self._reply(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"")
            if self.path == "/v1/traces":
                server.on_traces(TraceRequest.FromString(body), "http")
                response = trace_service_pb2.ExportTraceServiceResponse()
            elif self.path == "/v1/metrics":
                server.on_metrics(MetricsRequest.FromString(body), "http")
                response = metrics_service_pb2.ExportMetricsServiceResponse()
            else:
                return self._reply(HTTPStatus.NOT_FOUND, b"")
            self._reply(HTTPStatus.OK, response.SerializeToString())

        def _reply(self, status: HTTPStatus, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002 (http.server signature)
            pass  # quiet: every export would be a line

    return OtlpHttpHandler
