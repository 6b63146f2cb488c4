"""The table of the database cache that holds the checkout throttle's counts (settings.CACHES["throttle"])."""

from django.conf import settings
from django.db import migrations


def create_cache_table(apps, schema_editor):
    """Create the table as ``manage.py createcachetable`` would, whichever cache backend is configured now."""
    from django.core.management.commands.createcachetable import Command

    command = Command()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, settings.THROTTLE_CACHE_TABLE, dry_run=False)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(settings.THROTTLE_CACHE_TABLE)}")


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, drop_cache_table, elidable=False)]
