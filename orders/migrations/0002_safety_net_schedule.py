"""Create the every-minute safety net that closes overdue orders whose one-off timeout was lost."""

from django.db import migrations

SAFETY_NET_NAME = "close-overdue-orders"


def create_safety_net(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.get_or_create(
        name=SAFETY_NET_NAME,
        defaults={"func": "orders.tasks.close_overdue_orders", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def delete_safety_net(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SAFETY_NET_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_safety_net, delete_safety_net)]
