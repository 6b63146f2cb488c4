"""The order service over gRPC: a real ``grpcserver`` process and a real client, on the test database."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import grpc
import pytest
from django.db import connection  # noqa: F401 - read by the skipif condition
from rest_framework.authtoken.models import Token

from mall.api.grpc_status import FAULT_STATUSES, GRPC_STATUS_BY_CODE
from orders.grpc import order_pb2
from orders.invariants import check_invariants
from orders.models import Order
from tests.factories import GoodsFactory, UserFactory, fill_cart
from tests.grpc_support import error_code, grpc_server, order_request, order_stub, token_metadata
from tests.support import REPO, read_log, wait_until
from tests.tooling.test_architecture import _domain_errors

GENERATED = ("orders/grpc/order_pb2.py", "orders/grpc/order_pb2_grpc.py")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_the_committed_generated_code_is_what_the_proto_gives(tmp_path):
    subprocess.run([sys.executable, "scripts/protos", str(tmp_path)], cwd=REPO, check=True, timeout=60)
    stale = [path for path in GENERATED if (tmp_path / path).read_text() != (REPO / path).read_text()]
    assert stale == [], "run scripts/protos and commit the generated code"


def test_every_domain_error_code_has_its_grpc_status():
    errors = _domain_errors()
    assert [error.__qualname__ for error in errors if error.code not in GRPC_STATUS_BY_CODE] == []
    for error in errors:  # faults are INTERNAL/UNAVAILABLE, refusals never
        assert (GRPC_STATUS_BY_CODE[error.code] in FAULT_STATUSES) == error.fault, error.__qualname__


def test_the_contracts_status_codes():
    expected = {
        "cart_empty": grpc.StatusCode.INVALID_ARGUMENT,
        "invalid": grpc.StatusCode.INVALID_ARGUMENT,
        "insufficient_stock": grpc.StatusCode.RESOURCE_EXHAUSTED,
        "throttled": grpc.StatusCode.RESOURCE_EXHAUSTED,
        "goods_unavailable": grpc.StatusCode.FAILED_PRECONDITION,
        "order_not_pending": grpc.StatusCode.FAILED_PRECONDITION,
        "not_found": grpc.StatusCode.NOT_FOUND,
        "not_authenticated": grpc.StatusCode.UNAUTHENTICATED,
        "authentication_failed": grpc.StatusCode.UNAUTHENTICATED,
        "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    }
    assert {code: GRPC_STATUS_BY_CODE[code] for code in expected} == expected


@pytest.fixture
def buyer(transactional_db):
    user = UserFactory()
    return user, Token.objects.create(user=user).key


@pytest.fixture
def shop(transactional_db, tmp_path):
    with grpc_server(log_dir=tmp_path) as (target, process), grpc.insecure_channel(target) as channel:
        yield order_stub(channel), channel, process
    assert "Traceback" not in read_log(tmp_path, "grpcserver")


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


@pytest.mark.slow
def test_an_order_placed_over_grpc_answers_the_originals_fields(shop, buyer):
    stub, _, _ = shop
    user, key = buyer
    goods = GoodsFactory(price="12.50", stock_quantity=5)
    fill_cart(user, (goods, 2))

    placed = stub.CreateGoodsOrder(order_request(note="ring twice"), metadata=token_metadata(key), timeout=30)

    order = Order.objects.get()
    assert placed.id == order.pk and placed.order_no == order.order_no
    assert placed.pay_price == "25.00"
    assert placed.user_id == user.pk
    assert placed.order_status == "pending" and placed.pay_type == ""
    assert (placed.username, placed.address, placed.mobile, placed.post) == (
        "Ada",
        "1 Market Street",
        "+15550100",
        "10001",
    )
    assert placed.add_time == order.created_at.strftime("%Y-%m-%d %H:%M:%S")
    assert HEX32.match(placed.trace_id) and placed.trace_id == order.trace_id
    assert [(line.goods_id, line.goods_price, line.nums) for line in placed.lines] == [(goods.pk, "12.50", 2)]
    assert order.note == "ring twice"

    detail = stub.OrderDetail(order_pb2.OrderIdRequest(id=order.pk), metadata=token_metadata(key), timeout=30)
    assert detail == placed
    paid = stub.PayOrder(order_pb2.OrderIdRequest(id=order.pk, user_id=user.pk), metadata=token_metadata(key))
    assert (paid.order_status, paid.pay_type) == ("paid", "simulated")
    again = refused(lambda: stub.PayOrder(order_pb2.OrderIdRequest(id=order.pk), metadata=token_metadata(key)))
    assert (again.code(), error_code(again)) == (grpc.StatusCode.FAILED_PRECONDITION, "order_not_pending")


@pytest.mark.slow
def test_cancel_over_grpc_returns_the_stock(shop, buyer):
    stub, _, _ = shop
    user, key = buyer
    goods = GoodsFactory(stock_quantity=3)
    fill_cart(user, (goods, 3))
    placed = stub.CreateGoodsOrder(order_request(), metadata=token_metadata(key), timeout=30)

    cancelled = stub.CancelOrder(order_pb2.OrderIdRequest(id=placed.id), metadata=token_metadata(key), timeout=30)

    assert cancelled.order_status == "cancelled"
    goods.stock.refresh_from_db()
    assert goods.stock.quantity == 3


@pytest.mark.slow
def test_the_token_rules(shop, buyer):
    stub, _, _ = shop
    user, key = buyer
    other = UserFactory()
    fill_cart(user, (GoodsFactory(stock_quantity=5), 1))
    cases = {
        "no token": ((), grpc.StatusCode.UNAUTHENTICATED, "not_authenticated"),
        "a bad token": (token_metadata("not-a-token"), grpc.StatusCode.UNAUTHENTICATED, "authentication_failed"),
        "not a token scheme": (
            (("authorization", f"Bearer {key}"),),
            grpc.StatusCode.UNAUTHENTICATED,
            "authentication_failed",
        ),
    }
    for case, (metadata, status, code) in cases.items():
        error = refused(lambda metadata=metadata: stub.CreateGoodsOrder(order_request(), metadata=metadata, timeout=30))
        assert (error.code(), error_code(error)) == (status, code), case
    error = refused(lambda: stub.CreateGoodsOrder(order_request(user_id=other.pk), metadata=token_metadata(key)))
    assert (error.code(), error_code(error)) == (grpc.StatusCode.PERMISSION_DENIED, "permission_denied")
    assert Order.objects.count() == 0

    placed = stub.CreateGoodsOrder(order_request(user_id=user.pk), metadata=token_metadata(key), timeout=30)
    assert placed.user_id == user.pk
    # Another user's order does not exist for the caller.
    other_key = Token.objects.create(user=other).key
    error = refused(
        lambda: stub.OrderDetail(order_pb2.OrderIdRequest(id=placed.id), metadata=token_metadata(other_key))
    )
    assert (error.code(), error_code(error)) == (grpc.StatusCode.NOT_FOUND, "not_found")


@pytest.mark.slow
def test_refusals_are_the_originals_status_codes(shop, buyer):
    stub, _, _ = shop
    user, key = buyer
    metadata = token_metadata(key)

    def status_of(call):
        error = refused(call)
        return error.code(), error_code(error)

    assert status_of(lambda: stub.CreateGoodsOrder(order_request(), metadata=metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "cart_empty",
    )
    scarce = GoodsFactory(stock_quantity=1)
    fill_cart(user, (scarce, 2))
    assert status_of(lambda: stub.CreateGoodsOrder(order_request(), metadata=metadata)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "insufficient_stock",
    )
    for bad in ({"mobile": "call me"}, {"address": ""}, {"username": "x" * 51}, {"address": "a" * 10_000}):
        assert status_of(lambda bad=bad: stub.CreateGoodsOrder(order_request(**bad), metadata=metadata)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid",
        ), bad
    scarce.on_sale = False
    scarce.save()
    assert status_of(lambda: stub.CreateGoodsOrder(order_request(), metadata=metadata)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "goods_unavailable",
    )
    for unknown in (0, 999_999, 2**64 - 1):
        assert status_of(
            lambda unknown=unknown: stub.PayOrder(order_pb2.OrderIdRequest(id=unknown), metadata=metadata)
        ) == (
            grpc.StatusCode.NOT_FOUND,
            "not_found",
        )
    assert Order.objects.count() == 0


@pytest.mark.slow
def test_an_idempotency_key_works_as_the_rest_header(shop, buyer):
    stub, _, _ = shop
    user, key = buyer
    fill_cart(user, (GoodsFactory(stock_quantity=5), 1))
    metadata = token_metadata(key, ("idempotency-key", "order-1"))

    first = stub.CreateGoodsOrder(order_request(), metadata=metadata, timeout=30)
    replay = stub.CreateGoodsOrder(order_request(), metadata=metadata, timeout=30)
    error = refused(lambda: stub.CreateGoodsOrder(order_request(address="2 Other Road"), metadata=metadata))

    assert replay.id == first.id
    assert Order.objects.count() == 1
    assert (error.code(), error_code(error)) == (grpc.StatusCode.ALREADY_EXISTS, "idempotency_key_reused")


@pytest.mark.slow
def test_faults_and_throttling(transactional_db, tmp_path, buyer):
    user, key = buyer
    fill_cart(user, (GoodsFactory(stock_quantity=5), 1))
    env = {"CHECKOUT_FAIL_STEP": "save_order", "MALL_ALLOW_FAULT_INJECTION": "1", "CHECKOUT_THROTTLE_RATE": "2/minute"}
    with grpc_server(log_dir=tmp_path, **env) as (target, _), grpc.insecure_channel(target) as channel:
        stub = order_stub(channel)
        outcomes = []
        for _ in range(3):
            error = refused(lambda: stub.CreateGoodsOrder(order_request(), metadata=token_metadata(key), timeout=30))
            outcomes.append((error.code(), error_code(error)))
    assert outcomes == [
        (grpc.StatusCode.UNAVAILABLE, "checkout_fault_injected"),
        (grpc.StatusCode.UNAVAILABLE, "checkout_fault_injected"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "throttled"),
    ]
    assert Order.objects.count() == 0


@pytest.mark.slow
def test_malformed_messages_never_crash_the_server(shop, buyer):
    stub, channel, process = shop
    user, key = buyer
    metadata = token_metadata(key)
    raw = channel.unary_unary("/mall.order.v1.Order/CreateGoodsOrder")  # bytes in, bytes out
    wrong_types = (
        b"\x18\x05"  # field 3 (address, a string) sent as a varint
        + b"\x0a\x03abc"  # field 1 (user_id, a varint) sent as a string
    )
    bad_utf8 = b"\x1a\x02\xff\xfe"  # address: not UTF-8
    for message in (b"\xff\xff\xff\xff", wrong_types, bad_utf8, b"\x1a\xff\xff\xff\x0f", b"\x00" * 100):
        error = refused(lambda message=message: raw(message, metadata=metadata, timeout=30))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert error_code(error) in {"malformed", "invalid"}, message
    huge = order_request(address="a" * 2_000_000)
    error = refused(lambda: stub.CreateGoodsOrder(huge, metadata=metadata, timeout=30))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # over the message limit, refused by gRPC itself
    assert process.poll() is None
    # Still serving: a good call goes through.
    fill_cart(user, (GoodsFactory(stock_quantity=5), 1))
    assert stub.CreateGoodsOrder(order_request(), metadata=metadata, timeout=30).order_status == "pending"


@pytest.mark.slow
def test_a_misconfigured_grpc_setting_is_one_line_and_exit_1(tmp_path):
    from tests.tooling.test_configuration_errors import clean_env

    for variable, value in (("MALL_GRPC_THREADS", "many"), ("MALL_GRPC_BIND", "9500")):
        result = subprocess.run(
            [sys.executable, "manage.py", "grpcserver"],
            cwd=REPO,
            env=clean_env(**{variable: value}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = (result.stdout + result.stderr).strip()
        assert result.returncode == 1, output
        assert output.startswith("mall: configuration error: ") and variable in output and len(output.splitlines()) == 1


CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@pytest.mark.slow
def test_a_call_is_traced_server_span_create_order_steps_sql_in_the_callers_trace(
    transactional_db, tmp_path, buyer, otlp_receiver
):
    from orders.tracing import CHECKOUT_STEPS

    user, key = buyer
    fill_cart(user, (GoodsFactory(stock_quantity=5), 1), (GoodsFactory(stock_quantity=5), 2))
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint_for("grpc"),
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    traceparent = ("traceparent", f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01")
    with grpc_server(log_dir=tmp_path, **env) as (target, _), grpc.insecure_channel(target) as channel:
        placed = order_stub(channel).CreateGoodsOrder(
            order_request(), metadata=token_metadata(key, traceparent), timeout=30
        )
        wait_until(lambda: otlp_receiver.spans_named("create_order"), timeout=20, what="create_order exported")

    assert placed.trace_id == CALLER_TRACE_ID
    spans = otlp_receiver.trace(CALLER_TRACE_ID)
    (server,) = [s for s in spans if s.kind == "SERVER"]
    assert server.name == "/mall.order.v1.Order/CreateGoodsOrder"
    assert server.parent_span_id == CALLER_SPAN_ID
    assert server.attributes["rpc.system"] == "grpc"
    children = otlp_receiver.children_of(server)
    (create,) = [span for span in children if span.kind != "CLIENT"]  # beside it: the token's SQL
    assert create.name == "create_order" and create.status == "UNSET"
    assert create.attributes["mall.order.no"] == placed.order_no
    steps = [span for span in otlp_receiver.children_of(create) if span.kind == "INTERNAL"]  # beside: BEGIN/COMMIT
    assert sorted(step.name for step in steps) == sorted(CHECKOUT_STEPS)
    sql = [span for step in steps for span in otlp_receiver.children_of(step)]
    assert sql and {span.kind for span in sql} == {"CLIENT"}
    assert {s.trace_id for s in spans} == {CALLER_TRACE_ID}
    assert Order.objects.get().events.get().trace_id == CALLER_TRACE_ID


@pytest.mark.slow
def test_a_refusal_leaves_the_server_span_with_the_status_and_create_order_unset(
    transactional_db, tmp_path, buyer, otlp_receiver
):
    _, key = buyer
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint_for("grpc"),
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    with grpc_server(log_dir=tmp_path, **env) as (target, _), grpc.insecure_channel(target) as channel:
        refused(lambda: order_stub(channel).CreateGoodsOrder(order_request(), metadata=token_metadata(key)))
        wait_until(lambda: otlp_receiver.spans_named("create_order"), timeout=20, what="create_order exported")

    (create,) = otlp_receiver.spans_named("create_order")
    assert create.status == "UNSET" and create.attributes["mall.refusal.code"] == "cart_empty"
    (server,) = [s for s in otlp_receiver.trace(create.trace_id) if s.kind == "SERVER"]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


MARIADB_ONLY = pytest.mark.skipif(
    "connection.vendor != 'mysql'", reason="row-lock races and a visible waiting statement need MariaDB/MySQL"
)


@pytest.mark.slow
@MARIADB_ONLY
def test_no_oversell_when_40_clients_race_for_10_units_over_grpc_and_rest(transactional_db, tmp_path):
    import requests

    from inventory.models import Stock
    from tests.support import run_concurrently, shop_env, shop_server

    goods = GoodsFactory(stock_quantity=10)
    buyers = [UserFactory() for _ in range(40)]
    for user in buyers:
        fill_cart(user, (goods, 1))
    keys = [Token.objects.create(user=user).key for user in buyers]
    with (
        grpc_server(log_dir=tmp_path) as (target, _),
        grpc.insecure_channel(target) as channel,
        shop_server(env=shop_env(), log_dir=tmp_path) as base_url,
    ):
        stub = order_stub(channel)

        def checkout(numbered_key):
            number, key = numbered_key
            if number % 2:  # every other client over REST
                response = requests.post(
                    f"{base_url}/api/orders/",
                    json={"address": "1 Market Street", "signer_name": "Ada", "signer_mobile": "+15550100"},
                    headers={"Authorization": f"Token {key}"},
                    timeout=60,
                )
                return "placed" if response.status_code == 201 else response.json()["code"]
            try:
                stub.CreateGoodsOrder(order_request(), metadata=token_metadata(key), timeout=60)
            except grpc.RpcError as error:
                return error_code(error)
            return "placed"

        outcomes = run_concurrently(checkout, list(enumerate(keys)))

    assert sorted(set(outcomes)) == ["insufficient_stock", "placed"]
    assert outcomes.count("placed") == 10
    assert Order.objects.count() == 10
    assert Stock.objects.get(goods=goods).quantity == 0
    assert check_invariants() == []


@pytest.mark.slow
@MARIADB_ONLY
def test_sigterm_lets_a_call_in_flight_finish_then_stops(transactional_db, tmp_path, buyer):
    from concurrent.futures import ThreadPoolExecutor

    from tests.support import mariadb_sessions, session_running

    user, key = buyer
    goods = GoodsFactory(stock_quantity=5)
    fill_cart(user, (goods, 1))
    with (
        grpc_server(log_dir=tmp_path) as (target, process),
        grpc.insecure_channel(target) as channel,
        mariadb_sessions(2) as (holder, watcher),
        ThreadPoolExecutor(1) as pool,
    ):
        # Another session holds the stock row: the checkout waits inside its transaction, in flight.
        holder.autocommit(False)
        holder.cursor().execute("SELECT quantity FROM inventory_stock WHERE goods_id = %s FOR UPDATE", [goods.pk])
        call = pool.submit(
            order_stub(channel).CreateGoodsOrder, order_request(), metadata=token_metadata(key), timeout=60
        )
        session_running(watcher, "%inventory_stock%FOR UPDATE%", what="the checkout to wait for the stock lock")
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping" in read_log(tmp_path, "grpcserver"), timeout=20, what="the server to stop")
        assert process.poll() is None, "it waits for the call in flight"
        holder.rollback()  # the lock goes: the checkout goes on
        placed = call.result(timeout=60)
        assert process.wait(timeout=30) == 0

    assert placed.order_status == "pending"
    assert Order.objects.get().order_no == placed.order_no
    assert "gRPC order service stopped" in read_log(tmp_path, "grpcserver")
    assert check_invariants() == []


@pytest.mark.slow
def test_place_test_orders_over_grpc_is_one_trace_from_the_client_to_the_server(
    transactional_db, settings, tmp_path, otlp_receiver, monkeypatch
):
    import json
    from io import StringIO

    from django.core.management import call_command

    from tests.support import shop_env, shop_server

    # Users made here log in to a shop process, which does not know the suite's fast MD5 hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.ScryptPasswordHasher"]
    call_command("seed_demo", goods=4, stock=100, users=2, password="grpc-load-password", stdout=StringIO())
    exporting = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint_for("grpc"),
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    for variable, value in exporting.items():  # the load tool's own spans
        monkeypatch.setenv(variable, value)
    out = StringIO()
    with (
        grpc_server(log_dir=tmp_path, **exporting) as (target, _),
        shop_server(env=shop_env(**exporting), log_dir=tmp_path) as base_url,
    ):
        call_command(
            "place_test_orders",
            grpc=target,
            url=base_url,
            orders=4,
            users=2,
            lines=1,
            pay_ratio=1,
            password="grpc-load-password",
            json=True,
            quiet=True,
            stdout=out,
            stderr=StringIO(),
        )
        wait_until(lambda: len(otlp_receiver.spans_named("create_order")) >= 4, timeout=20, what="the checkouts' spans")

    figures = json.loads(out.getvalue())
    assert (figures["mode"], figures["placed"], figures["paid"], figures["failed"]) == ("grpc", 4, 4, 0)
    for root in otlp_receiver.spans_named("place_test_order"):
        spans = otlp_receiver.trace(root.trace_id)
        (client,) = [s for s in spans if s.kind == "CLIENT" and s.name == "/mall.order.v1.Order/CreateGoodsOrder"]
        (server,) = [s for s in spans if s.kind == "SERVER" and s.name == "/mall.order.v1.Order/CreateGoodsOrder"]
        assert client.parent_span_id == root.span_id and client.resource["service.name"] == "mall-loadgen"
        assert server.parent_span_id == client.span_id and server.resource["service.name"] == "mall"
        assert [s.name for s in otlp_receiver.children_of(server) if s.kind == "INTERNAL"] == ["create_order"]
        assert [s for s in spans if s.name == "/mall.order.v1.Order/PayOrder" and s.kind == "SERVER"]


@pytest.mark.slow
def test_the_grpc_bench_runs_both_cycles_side_by_side(tmp_path):
    from tests.tooling.test_configuration_errors import clean_env

    result = subprocess.run(
        [sys.executable, "-m", "perf", "grpc", "--database-url", f"sqlite:///{tmp_path}/bench-grpc.sqlite3",
         "--clients", "2", "--cycles", "6", "--rounds", "1", "--warmup", "2"],
        cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split("|")[0].strip(): line for line in result.stdout.splitlines() if "|" in line}
    assert {"REST", "gRPC", "gRPC/REST"} <= set(rows)
    assert "failures" not in result.stdout
