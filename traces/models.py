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
    refusal_code = models.CharField(max_length=40, blank=True, help_text="mall.refusal.code (a refused operation)")
    # On entry rows only: how this process's part of the trace ended, known when its entry span is written
    # (it ends after its children); the search by outcome reads entry rows, so it needs no index of its own.
    outcome = models.CharField(max_length=10, blank=True, help_text="entry rows: ok, refusal or error")
    linked_trace_id = models.CharField(max_length=32, blank=True, help_text="the trace of the first span link")
    detail = models.JSONField(default=dict, help_text="attributes, events, links, status message")

    class Meta:
        ordering = ["start_ns", "id"]
        verbose_name_plural = "recent traces"
        indexes = [
            # (trace_id, name), not trace_id alone: one index serves a trace's spans and the search's
            # "has this trace a span named ..." probe, so the store writes no more indexes for it.
            models.Index(fields=["trace_id", "name"], name="tracespan_trace_name"),
            models.Index(fields=["entry", "start_ns"], name="tracespan_recent_entries"),
            models.Index(fields=["start_ns"], name="tracespan_start"),
            models.Index(fields=["order_no"], name="tracespan_order_no"),
            models.Index(fields=["linked_trace_id"], name="tracespan_linked_trace"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.trace_id})"


class DroppedSpans(models.Model):
    """Spans one process's trace store could not write during one outage, recorded when it wrote again."""

    since = models.DateTimeField(help_text="the first lost batch")
    until = models.DateTimeField(help_text="when the store wrote again")
    count = models.PositiveIntegerField()
    error = models.CharField(max_length=500, help_text="the error that began the outage")
    pid = models.PositiveIntegerField(help_text="the process whose spans were lost")

    class Meta:
        verbose_name_plural = "dropped spans"

    def __str__(self) -> str:
        return f"{self.count} spans dropped since {self.since}"
