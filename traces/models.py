from django.db import models


class TraceSpan(models.Model):
    """A finished span kept by the built-in trace store (bounded: see ``traces.store``)."""

    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    # Where this process's part of a trace begins: no parent, or a parent in another process.
    entry = models.BooleanField(default=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10)
    service = models.CharField(max_length=100, blank=True)
    start_ns = models.BigIntegerField(help_text="Unix time in nanoseconds")
    duration_ns = models.BigIntegerField()
    error = models.BooleanField(default=False)
    order_no = models.CharField(max_length=40, blank=True, help_text="mall.order.no, for the search by order")
    linked_trace_id = models.CharField(max_length=32, blank=True, help_text="the trace of the first span link")
    detail = models.JSONField(default=dict, help_text="attributes, events, links, status message")

    class Meta:
        ordering = ["start_ns", "id"]
        verbose_name_plural = "recent traces"
        indexes = [
            models.Index(fields=["trace_id"], name="tracespan_trace"),
            models.Index(fields=["entry", "start_ns"], name="tracespan_recent_entries"),
            models.Index(fields=["start_ns"], name="tracespan_start"),
            models.Index(fields=["order_no"], name="tracespan_order_no"),
            models.Index(fields=["linked_trace_id"], name="tracespan_linked_trace"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.trace_id})"
