"""Telemetry never holds up the task worker: with the collector refused or hanging, a close task takes at
most 1.5 s longer than with it up (real qcluster, real OTLP exporter, the in-process receiver), and the
spans a worker buffered still leave when it stops."""

import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Task
from django_q.tasks import async_task

from orders.checkout import create_order
from orders.models import Order
from tests.factories import UserFactory, fill_cart
from tests.support import free_port, qcluster, read_log, shop_env, wait_until

CLOSE_TASK = "orders.tasks.close_unpaid_order"
ORDERS_PER_RUN = 4
ALLOWED_EXTRA = 1.5  # seconds a task may take longer while the collector is away
STOP_BOUND = 15.0  # seconds from SIGTERM to exit: exit flushes of 5 s each, with margin


def exporting_env(endpoint: str, protocol: str = "grpc", **overrides: str) -> dict[str, str]:
    return shop_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        DJANGO_Q_WORKERS="1",
        **overrides,
    )


def overdue_orders(goods_in_stock, address, count: int) -> list[Order]:
    customer = UserFactory()
    tea = goods_in_stock(price="2.50", stock=count)
    orders = []
    for _ in range(count):
        fill_cart(customer, (tea, 1))
        orders.append(create_order(user=customer, **address).order)
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(expires_at=timezone.now() - timedelta(seconds=1))
    return orders


def close_task_durations(env: dict[str, str], orders: list[Order], log_dir) -> list[float]:
    """Close tasks queued back to back on a running qcluster (one worker): the time each one took,
    from the previous one's end (django-q2's ``stopped``), after a warm-up task has run."""
    Task.objects.all().delete()
    with qcluster(env=env, log_dir=log_dir):
        try:
            async_task(CLOSE_TASK, 0)  # no such order: the cluster is up once this one is done
            wait_until(lambda: Task.objects.filter(func=CLOSE_TASK).exists(), timeout=60, what="the warm-up task")
            queued_at = timezone.now()
            for order in orders:
                async_task(CLOSE_TASK, order.pk)
            wait_until(
                lambda: Task.objects.filter(func=CLOSE_TASK).count() == len(orders) + 1,
                timeout=120,
                interval=0.2,
                what="the close tasks to finish",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{read_log(log_dir, 'qcluster')[-3000:]}") from None
    tasks = list(Task.objects.filter(func=CLOSE_TASK, stopped__gte=queued_at).order_by("stopped"))
    assert len(tasks) == len(orders) and all(task.success for task in tasks), [task.result for task in tasks]
    assert Order.objects.filter(pk__in=[o.pk for o in orders], status=Order.Status.CLOSED).count() == len(orders)
    ends = [queued_at] + [task.stopped for task in tasks]
    return [(end - previous).total_seconds() for previous, end in zip(ends, ends[1:], strict=False)]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.django_db(transaction=True)
def test_a_refused_or_hanging_collector_costs_a_task_at_most_1_5_s(
    protocol, otlp_receiver, goods_in_stock, address, tmp_path
):
    up = close_task_durations(
        exporting_env(otlp_receiver.endpoint_for(protocol), protocol),
        overdue_orders(goods_in_stock, address, ORDERS_PER_RUN),
        tmp_path / "up",
    )
    assert otlp_receiver.spans_named("close_unpaid_order"), "the spans reach a collector that is up"
    refused = close_task_durations(
        exporting_env(f"http://127.0.0.1:{free_port()}", protocol),
        overdue_orders(goods_in_stock, address, ORDERS_PER_RUN),
        tmp_path / "refused",
    )
    otlp_receiver.stall()
    hanging = close_task_durations(
        exporting_env(otlp_receiver.endpoint_for(protocol), protocol),
        overdue_orders(goods_in_stock, address, ORDERS_PER_RUN),
        tmp_path / "hanging",
    )
    otlp_receiver.resume()

    slowest_up = max(up)
    assert max(refused) <= slowest_up + ALLOWED_EXTRA, (up, refused)
    assert max(hanging) <= slowest_up + ALLOWED_EXTRA, (up, hanging)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_stops_in_bounded_time_with_the_collector_hanging(otlp_receiver, goods_in_stock, address, tmp_path):
    """Its exit flush has a hard deadline: SIGTERM to a stopped worker within the cluster's own grace."""
    otlp_receiver.stall()
    orders = overdue_orders(goods_in_stock, address, 2)
    with qcluster(env=exporting_env(otlp_receiver.grpc_endpoint), log_dir=tmp_path) as process:
        for order in orders:
            async_task(CLOSE_TASK, order.pk)
        wait_until(lambda: Task.objects.filter(func=CLOSE_TASK).count() == 2, timeout=60, what="the close tasks")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        stopped_after = time.monotonic() - started
    otlp_receiver.resume()
    assert stopped_after < STOP_BOUND, read_log(tmp_path, "qcluster")[-3000:]
