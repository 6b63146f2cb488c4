"""Writes of an order's lifecycle events: called by the services, inside the transaction of the change."""

from datetime import datetime

from django.db import connection

from mall.telemetry.spans import current_trace_id
from orders.models import Order, OrderEvent


def record_event(*, order: Order, kind: str, at: datetime, actor: str, staff_user=None) -> OrderEvent:
    """The event of one change of ``order``, with the current trace; call it in the change's transaction."""
    return OrderEvent.objects.create(
        order=order, kind=kind, at=at, actor=actor, staff_user=staff_user, trace_id=current_trace_id()
    )


def record_closed_events(*, order_ids: list[int], at: datetime, actor: str) -> None:
    """The ``closed`` events of a batch in ONE statement whatever its size (INSERT … SELECT; a bulk_create
    would be split by SQLite's 999-parameter limit), with the current trace."""
    event, order = OrderEvent._meta, Order._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(event.get_field(name).column) for name in ("order", "kind", "at", "actor", "trace_id"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(event.db_table)} ({columns}) "
            f"SELECT {quote(order.pk.column)}, %s, %s, %s, %s FROM {quote(order.db_table)} "
            f"WHERE {quote(order.pk.column)} IN ({', '.join(['%s'] * len(order_ids))})",
            [
                OrderEvent.Kind.CLOSED.value,
                connection.ops.adapt_datetimefield_value(at),
                actor,
                current_trace_id(),
                *order_ids,
            ],
        )
