"""django-q2 tasks of the payment timeout. Stored schedules name them by these dotted paths, so here they stay.

The deadline buckets' task is ``orders.timeouts.close_due_orders``.
"""

from mall.telemetry import flushes_telemetry
from orders.models import OrderEvent
from orders.timeouts import BATCH_SIZE, close_order_traced, sweep_overdue_orders


@flushes_telemetry
def close_unpaid_order(order_id: int, traceparent: str = "") -> str:
    """Task of a per-order schedule (stored before the deadline buckets, still run): close the order if still unpaid."""
    return close_order_traced(order_id, actor=OrderEvent.Actor.TIMEOUT, traceparent=traceparent)


@flushes_telemetry
def close_overdue_orders(batch_size: int = BATCH_SIZE) -> int:
    """Task of the safety net's schedule (every minute): close the overdue orders whose timeout was lost."""
    return sweep_overdue_orders(batch_size)
