"""End to end: an order placed through a real web process is closed by a real ``qcluster`` worker.

gunicorn and ``manage.py qcluster`` run as subprocesses on the test database with
``ORDER_PAY_TIMEOUT`` of a few seconds, both exporting over OTLP/gRPC to an in-process receiver.
django-q2's scheduler first wakes about 30 s after the cluster starts, so each run takes ~35 s.
Once with the ORM broker (the default), once with Redis: a ``redis-server`` of this test's own, on a
free port, so no Redis database of anyone else is touched.
"""

import shutil
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import redis
import requests
from django.utils import timezone
from django_q.models import Schedule, Task
from rest_framework.authtoken.models import Token

from inventory.models import Stock, StockMove
from orders.models import Order
from tests.otlp_receiver import running_otlp_receiver
from tests.support import free_port, qcluster, read_log, running, shop_env, shop_server, wait_until

pytestmark = pytest.mark.slow

CLOSE_TASK = "orders.tasks.close_due_orders"  # the task of the order's deadline bucket
PAY_TIMEOUT = 3  # seconds
CLOSE_WAIT = 90  # the scheduler wakes ~30 s after start, then every 30 s; a ONCE schedule fires 0–30 s late


@contextmanager
def own_redis_server(log_dir):
    """A throw-away ``redis-server`` on a free loopback port (no persistence); yields its URL."""
    executable = shutil.which("redis-server")
    assert executable, "redis-server is not on PATH: install Redis (Debian: apt-get install redis-server)"
    port = free_port()
    args = [executable, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    with running(args + ["--dir", str(log_dir)], env={}, name="redis", log_dir=log_dir) as process:
        client = redis.Redis(host="127.0.0.1", port=port)

        def answers():
            if process.poll() is not None:
                raise AssertionError(f"redis-server exited: {read_log(log_dir, 'redis')[-2000:]}")
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=15, what="redis-server to answer")
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            client.close()


@pytest.fixture(params=["orm", "redis"])
def broker_env(request, tmp_path):
    """Environment choosing django-q2's broker: the ORM (same database) or a Redis of this test's own."""
    if request.param == "orm":
        yield {}
        return
    with own_redis_server(tmp_path / "redis") as url:
        yield {"DJANGO_Q_REDIS_URL": url}


def test_an_unpaid_order_is_closed_by_the_worker_and_traced(
    transactional_db, broker_env, tmp_path, user, goods_in_stock, address
):
    Schedule.objects.filter(name="close-overdue-orders").delete()  # the one-off timeout must do it, not the net
    goods = goods_in_stock(stock=10)
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}

    with running_otlp_receiver() as otlp:
        env = shop_env(
            ORDER_PAY_TIMEOUT=str(PAY_TIMEOUT),
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.grpc_endpoint,
            OTEL_METRICS_EXPORTER="none",
            DJANGO_Q_WORKERS="1",
            **broker_env,
        )
        with qcluster(env=env, log_dir=tmp_path) as cluster, shop_server(env=env, log_dir=tmp_path) as base_url:
            assert requests.post(f"{base_url}/api/cart/", json={"goods": goods.pk, "nums": 3}, headers=headers).ok
            placed = requests.post(f"{base_url}/api/orders/", json=address, headers=headers, timeout=30)
            assert placed.status_code == 201, placed.text
            body = placed.json()
            deadline = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
            assert deadline - timezone.now() < timedelta(seconds=PAY_TIMEOUT)  # the web honours ORDER_PAY_TIMEOUT
            assert Stock.objects.get(goods=goods).quantity == 7
            placed_at = time.monotonic()

            def closed():
                if cluster.poll() is not None:
                    raise AssertionError(f"qcluster exited: {read_log(tmp_path, 'qcluster')[-3000:]}")
                return Order.objects.filter(pk=body["id"], status=Order.Status.CLOSED).exists()

            wait_until(closed, timeout=CLOSE_WAIT, interval=0.5, what="the worker to close the order")
            closed_after = time.monotonic() - placed_at
            task = wait_until(
                lambda: Task.objects.filter(func=CLOSE_TASK).first(), timeout=15, what="the task result to be saved"
            )
            create_spans = wait_until(
                lambda: otlp.spans_named("create_order", trace_id=body["trace_id"]), timeout=15, what="create_order"
            )
            close_spans = wait_until(
                lambda: otlp.spans_named("close_unpaid_order"), timeout=15, what="the worker's close span"
            )

    print(f"order closed {closed_after:.1f} s after it was placed ({PAY_TIMEOUT} s timeout)")
    assert Stock.objects.get(goods=goods).quantity == 10
    returns = StockMove.objects.filter(order_no=body["order_no"], kind=StockMove.Kind.RETURN)
    assert list(returns.values_list("goods_id", "quantity")) == [(goods.pk, 3)]
    assert (task.success, task.result) == (True, 1)  # the bucket's task closed the one order due
    assert not Schedule.objects.filter(func=CLOSE_TASK).exists()  # ONCE schedule deleted when queued

    (create,) = create_spans
    (close,) = close_spans
    assert close.parent_span_id == "" and close.trace_id != create.trace_id
    assert [(link.trace_id, link.span_id) for link in close.links] == [(create.trace_id, create.span_id)]
    assert close.attributes["mall.order.no"] == body["order_no"]
    assert close.attributes["mall.order.outcome"] == "closed"
    assert close.resource["service.name"] == "mall"
    # The close ran in a batch: its statements are in the bucket task's trace, which the close names.
    (batch,) = otlp.spans_named("close_due_orders", trace_id=close.attributes["mall.timeout.task_trace_id"])
    statements = otlp.children_of(batch)
    assert statements and all(s.kind == "CLIENT" for s in statements)
    # The broker's polling, the scheduler and the result monitor run SQL outside any span: dropped.
    assert [s.name for s in otlp.spans if s.kind == "CLIENT" and not s.parent_span_id] == []
    log = read_log(tmp_path, "qcluster")
    assert "Traceback" not in log, log[-3000:]
