"""A real ``manage.py grpcserver`` process on the test database and a real gRPC client of it."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mall.api.grpc_status import ERROR_CODE_METADATA_KEY
from orders.grpc import order_pb2, order_pb2_grpc
from tests.support import free_port, read_log, running, shop_env, wait_until


def _serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


@contextmanager
def grpc_server(*, log_dir: Path, **env: str):
    """``manage.py grpcserver`` on a free port of 127.0.0.1; yields (target, process) once it is SERVING."""
    target = f"127.0.0.1:{free_port()}"
    args = [sys.executable, "manage.py", "grpcserver"]
    with running(args, env=shop_env(MALL_GRPC_BIND=target, **env), name="grpcserver", log_dir=log_dir) as process:
        wait_until(lambda: process.poll() is not None or _serving(target), timeout=60, what="grpcserver SERVING")
        assert process.poll() is None, read_log(log_dir, "grpcserver")
        yield target, process  # stopped with SIGTERM by running()


def order_stub(channel: grpc.Channel) -> order_pb2_grpc.OrderStub:
    return order_pb2_grpc.OrderStub(channel)


def token_metadata(key: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Token {key}"), *extra)


def error_code(error: grpc.RpcError) -> str:
    """The domain code of a refused call (trailing metadata ``mall-error-code``)."""
    return dict(error.trailing_metadata() or ()).get(ERROR_CODE_METADATA_KEY, "")


def order_request(**fields) -> order_pb2.OrderRequest:
    values = {"address": "1 Market Street", "username": "Ada", "mobile": "+15550100", "post": "10001"}
    values.update(fields)
    return order_pb2.OrderRequest(**values)
