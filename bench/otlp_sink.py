"""A minimal OTLP receiver for the benchmark: accepts traces and metrics (gRPC and HTTP), counts spans, keeps nothing.

A real collector answers quickly and does its work elsewhere; this one does the least a collector must
(parse the request to count its spans) so that the shop's export cost is measured, not the receiver's.
"""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def count_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


class OtlpSink:
    """``grpc_endpoint`` and ``http_endpoint`` on free 127.0.0.1 ports; ``spans`` counts what arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans = 0
        self.export_requests = 0
        self.grpc_endpoint = ""
        self.http_endpoint = ""
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None

    def received(self, spans: int) -> None:
        with self._lock:
            self.spans += spans
            self.export_requests += 1

    def endpoint_for(self, protocol: str) -> str:
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint

    def start(self) -> OtlpSink:
        self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._grpc_server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(), self._grpc_server)
        port = self._grpc_server.add_insecure_port("127.0.0.1:0")
        self._grpc_server.start()
        self.grpc_endpoint = f"http://127.0.0.1:{port}"
        self._http_server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self))
        self._http_server.daemon_threads = True
        threading.Thread(target=self._http_server.serve_forever, name="otlp-sink-http", daemon=True).start()
        self.http_endpoint = f"http://127.0.0.1:{self._http_server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpSink):
        self.sink = sink

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        self.sink.received(count_spans(request))
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def _http_handler(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server method name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                import gzip

                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                sink.received(count_spans(trace_service_pb2.ExportTraceServiceRequest.FromString(body)))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            else:
                reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format, *args):  # noqa: A002 (http.server signature)
            pass

    return Handler
