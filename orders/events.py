"""Writes of an order's lifecycle events: called by the services, inside the transaction of the change."""

from collections.abc import Mapping
from datetime import datetime

from django.db import connection

from mall.db import in_callers_transaction
from mall.telemetry.spans import current_trace_id
from orders.models import Order, OrderEvent


@in_callers_transaction
def record_event(*, order: Order, kind: str, at: datetime, actor: str, staff_user=None) -> OrderEvent:
    """Write the event of one change of ``order``, with the current trace, in the change's transaction."""
    return OrderEvent.objects.create(
        order=order, kind=kind, at=at, actor=actor, staff_user=staff_user, trace_id=current_trace_id()
    )


@in_callers_transaction
def record_closed_events(
    *, order_ids: list[int], at: datetime, actor: str, trace_ids: Mapping[int, str] | None = None
) -> None:
    """Write the ``closed`` events of a batch in ONE statement whatever its size (INSERT … SELECT; a bulk_create
    would be split by SQLite's 999-parameter limit), with the current trace, or each order's own trace
    from ``trace_ids`` (order id → 32-hex trace id)."""
    event, order = OrderEvent._meta, Order._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(event.get_field(name).column) for name in ("order", "kind", "at", "actor", "trace_id"))
    pk = quote(order.pk.column)
    if trace_ids is None:
        trace_id_sql, trace_id_params = "%s", [current_trace_id()]
    else:
        trace_id_sql = f"CASE {pk} {' '.join(['WHEN %s THEN %s'] * len(trace_ids))} ELSE '' END"
        trace_id_params = [value for item in trace_ids.items() for value in item]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(event.db_table)} ({columns}) "
            f"SELECT {pk}, %s, %s, %s, {trace_id_sql} FROM {quote(order.db_table)} "
            f"WHERE {pk} IN ({', '.join(['%s'] * len(order_ids))})",
            [
                OrderEvent.Kind.CLOSED.value,
                connection.ops.adapt_datetimefield_value(at),
                actor,
                *trace_id_params,
                *order_ids,
            ],
        )
