from django.db import migrations, models


class Migration(migrations.Migration):
    """The trace search's columns; the trace index becomes (trace_id, name), so the store writes no more indexes."""

    dependencies = [
        ("traces", "0002_dropped_spans"),
    ]

    operations = [
        migrations.AddField(
            model_name="tracespan",
            name="refusal_code",
            field=models.CharField(blank=True, help_text="mall.refusal.code (a refused operation)", max_length=40),
        ),
        migrations.AddField(
            model_name="tracespan",
            name="outcome",
            field=models.CharField(blank=True, help_text="entry rows: ok, refusal or error", max_length=10),
        ),
        migrations.AddIndex(
            model_name="tracespan",
            index=models.Index(fields=["trace_id", "name"], name="tracespan_trace_name"),
        ),
        # Last: a trace's spans stay indexed while the new index is built.
        migrations.RemoveIndex(
            model_name="tracespan",
            name="tracespan_trace",
        ),
    ]
