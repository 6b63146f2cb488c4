"""Every django-q2 entry point of the shop's orders, a few lines each. Stored schedules name them by these dotted
paths (migration 0006 rewrote older ones), so here they stay."""

from mall.telemetry import flushes_telemetry
from orders import expiry
from orders.models import OrderEvent


@flushes_telemetry
def close_due_orders() -> int:
    """Run a deadline bucket's schedule: close every order past its deadline."""
    return expiry.close_due_orders()


@flushes_telemetry
def close_overdue_orders(batch_size: int = expiry.BATCH_SIZE) -> int:
    """Run the safety net's schedule (every minute): close the overdue orders whose timeout was lost."""
    return expiry.sweep_overdue_orders(batch_size)


@flushes_telemetry
def close_unpaid_order(order_id: int, traceparent: str = "") -> str:
    """Close one order if it is still unpaid, in a worker: the one-order task that benches and worker tests queue.

    No stored schedule names it since migration 0006 (which converted the per-order schedules of earlier
    versions into deadline buckets, and rewrote the ORM broker's queue). It stays for tasks a Redis broker
    held during the upgrade (a migration cannot rewrite them), for the worker tests, and for perf/bench's
    comparison with the per-order design.
    """
    return expiry.close_order_traced(order_id, actor=OrderEvent.Actor.TIMEOUT, traceparent=traceparent)
