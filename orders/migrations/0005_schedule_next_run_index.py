"""django_q_schedule at one row per pending order: an index on next_run and a 64-bit id.

django-q2's scheduler takes its due schedules every 30 s with ``SELECT … WHERE next_run < now …
FOR UPDATE`` (ordered by next_run). Without an index that is a full scan of every pending order's
schedule which, being a locking read, also waits behind any checkout that has written its schedule
row and not committed yet. With the index it reads (and locks) the due range only. The id becomes
BIGINT on MySQL/MariaDB (32 bits run out after 2^31 orders); SQLite's INTEGER PRIMARY KEY is
already 64 bits.

Database only: django_q owns the model, whose state is left alone (``makemigrations`` stays clean
for both apps); the index has its own name, so nothing of django_q's ever collides with it.
"""

from django.db import migrations

INDEX_NAME = "mall_schedule_next_run"


def widen_and_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "mysql":
        # One ALTER, one table rebuild.
        schema_editor.execute(
            f"ALTER TABLE django_q_schedule MODIFY id BIGINT NOT NULL AUTO_INCREMENT, ADD INDEX {INDEX_NAME} (next_run)"
        )
    else:
        schema_editor.execute(f"CREATE INDEX {INDEX_NAME} ON django_q_schedule (next_run)")


def narrow_and_unindex(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "mysql":
        schema_editor.execute(
            f"ALTER TABLE django_q_schedule DROP INDEX {INDEX_NAME}, MODIFY id INT NOT NULL AUTO_INCREMENT"
        )
    else:
        schema_editor.execute(f"DROP INDEX {INDEX_NAME}")


class Migration(migrations.Migration):
    atomic = False  # DDL: MySQL cannot run it in a transaction anyway

    dependencies = [
        ("orders", "0004_order_events"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(widen_and_index, narrow_and_unindex)]
