"""Fault rules reach the gRPC server too: a real ``grpcserver`` process, rules written while it runs."""

from __future__ import annotations

import grpc
import pytest
from rest_framework.authtoken.models import Token

from faults.services import clear_faults, set_fault
from inventory.models import StockMove
from orders.models import Order
from tests.factories import GoodsFactory, UserFactory, fill_cart
from tests.grpc_support import error_code, grpc_server, order_request, order_stub, token_metadata
from tests.support import read_log, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REACH = 2.0  # the contract: a rule takes effect in every process within 2 s


@pytest.fixture
def faults_allowed(settings):
    settings.DEBUG = False
    settings.MALL_ALLOW_FAULT_INJECTION = True


def fault_events(span):
    return [event for event in span.events if event.name == "mall.fault"]


def test_a_save_order_error_answers_unavailable_with_the_code_and_a_delay_shows_in_the_step_span(
    faults_allowed, tmp_path, otlp_receiver
):
    user = UserFactory()
    key = Token.objects.create(user=user).key
    goods = GoodsFactory(stock_quantity=50)
    env = {
        "MALL_ALLOW_FAULT_INJECTION": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint_for("grpc"),
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    with grpc_server(log_dir=tmp_path, **env) as (target, _), grpc.insecure_channel(target) as channel:
        stub = order_stub(channel)

        def checkout():
            fill_cart(user, (goods, 1))
            try:
                return stub.CreateGoodsOrder(order_request(), metadata=token_metadata(key), timeout=30)
            except grpc.RpcError as error:
                return error

        assert not isinstance(checkout(), grpc.RpcError)

        set_fault(step="save_order", kind="error")
        refused = wait_until(
            lambda: answer if isinstance(answer := checkout(), grpc.RpcError) else None,
            timeout=REACH + 3,
            interval=0.1,
            what="the error rule to reach the gRPC server",
        )
        assert (refused.code(), error_code(refused)) == (grpc.StatusCode.UNAVAILABLE, "checkout_fault_injected")
        orders, moves = Order.objects.count(), StockMove.objects.count()  # the calls before the rule arrived
        again = checkout()
        assert (again.code(), error_code(again)) == (grpc.StatusCode.UNAVAILABLE, "checkout_fault_injected")
        assert (Order.objects.count(), StockMove.objects.count()) == (orders, moves)  # nothing written

        set_fault(step="save_order", kind="delay", milliseconds=300)  # replaces the error: no rule-less moment
        placed = wait_until(
            lambda: answer if not isinstance(answer := checkout(), grpc.RpcError) else None,
            timeout=REACH + 3,
            interval=0.1,
            what="the delay rule to replace the error",
        )
        (step,) = wait_until(
            lambda: otlp_receiver.spans_named("save_order", trace_id=placed.trace_id),
            timeout=15,
            what="the save_order span exported",
        )
        clear_faults()
    assert "Traceback" not in read_log(tmp_path, "grpcserver")
    assert (step.end_time - step.start_time) / 1e6 >= 300
    (event,) = fault_events(step)
    assert (event.attributes["mall.fault.kind"], event.attributes["mall.fault.milliseconds"]) == ("delay", 300)
    (server,) = [span for span in otlp_receiver.trace(placed.trace_id) if span.kind == "SERVER"]
    assert server.name == "/mall.order.v1.Order/CreateGoodsOrder"
    assert Order.objects.get(order_no=placed.order_no).status == Order.Status.PENDING
