"""Point stored django-q2 schedules and queued ORM-broker tasks at the entry points of ``orders.tasks``.

The deadline buckets' task moved from ``orders.timeouts.close_due_orders`` to ``orders.tasks.close_due_orders``.
A per-order schedule of an earlier version (``orders.tasks.close_unpaid_order``, args ``(order_id, traceparent)``)
becomes its deadline bucket's schedule, or is deleted when that bucket already has one or the order is gone:
the bucket's task closes every order due by then, so no code path exists only for per-order schedules.
Reversing points the buckets' schedules back at the old path (per-order schedules are not re-created).
"""

import ast
from datetime import UTC, datetime

from django.db import migrations

BUCKET_TASK = "orders.tasks.close_due_orders"
OLD_BUCKET_TASK = "orders.timeouts.close_due_orders"
PER_ORDER_TASK = "orders.tasks.close_unpaid_order"
# As orders.expiry at the time of this migration (a migration does not import code that may change).
BUCKET_SECONDS = 5
SCHEDULE_PREFIX = "close-due-orders-"
ONCE = "O"


def _bucket_end(deadline: datetime) -> datetime:
    seconds = -(-deadline.timestamp() // BUCKET_SECONDS) * BUCKET_SECONDS
    return datetime.fromtimestamp(seconds, tz=UTC)


def _order_id(args: str | None) -> int | None:
    try:
        value = ast.literal_eval(args or "()")
    except (ValueError, SyntaxError):
        return None
    return value[0] if isinstance(value, tuple) and value and isinstance(value[0], int) else None


def to_orders_tasks(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # The historical model does not have mall.patches.use_64_bit_schedule_ids: without it, a schedule id past
    # 2^31 (migration 0005 widened the column) is found by no pk lookup, so save() would INSERT it again.
    Schedule._meta.pk.get_internal_type = lambda: "BigAutoField"
    Order = apps.get_model("orders", "Order")
    Schedule.objects.filter(func=OLD_BUCKET_TASK).update(func=BUCKET_TASK)
    for per_order in Schedule.objects.filter(func=PER_ORDER_TASK).order_by("pk"):
        order_id = _order_id(per_order.args)
        deadline = Order.objects.filter(pk=order_id).values_list("expires_at", flat=True).first()
        if deadline is None:
            per_order.delete()  # the order is gone: nothing to close
            continue
        end = _bucket_end(deadline)
        name = f"{SCHEDULE_PREFIX}{int(end.timestamp())}"
        if Schedule.objects.filter(name=name).exists():
            per_order.delete()  # the bucket's task closes this order too
            continue
        per_order.name, per_order.func, per_order.args, per_order.kwargs = name, BUCKET_TASK, None, None
        per_order.schedule_type, per_order.repeats = ONCE, -1
        per_order.next_run = max(end, per_order.next_run) if per_order.next_run else end
        per_order.save()
    _rewrite_queued_tasks(apps, {OLD_BUCKET_TASK: BUCKET_TASK, PER_ORDER_TASK: BUCKET_TASK})


def to_orders_timeouts(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=BUCKET_TASK).update(func=OLD_BUCKET_TASK)
    _rewrite_queued_tasks(apps, {BUCKET_TASK: OLD_BUCKET_TASK})


def _rewrite_queued_tasks(apps, paths: dict[str, str]) -> None:
    """Rewrite the function of tasks waiting in the ORM broker's queue (signed pickles of a task dict)."""
    from django_q.signing import BadSignature, SignedPackage

    OrmQ = apps.get_model("django_q", "OrmQ")
    for queued in OrmQ.objects.all():
        try:
            task = SignedPackage.loads(queued.payload)
        except BadSignature:  # signed with another key: not ours to read, left as it is
            continue
        if isinstance(task, dict) and task.get("func") in paths:
            if task["func"] == PER_ORDER_TASK:
                task["args"], task["kwargs"] = (), {}
            task["func"] = paths[task["func"]]
            queued.payload = SignedPackage.dumps(task)
            queued.save(update_fields=["payload"])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_schedule_next_run_index"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(to_orders_tasks, to_orders_timeouts)]
