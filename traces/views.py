"""Staff views of the built-in trace store: recent traces (filtered by order number) and one trace as a waterfall."""

from datetime import UTC, datetime

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Min, Sum
from django.template.response import TemplateResponse

from traces.models import DroppedSpans, TraceSpan
from traces.permissions import may_view_traces

RECENT_TRACES = 100


def _check_permission(request) -> None:
    if not may_view_traces(request.user):
        raise PermissionDenied


def _when(start_ns: int) -> datetime:
    return datetime.fromtimestamp(start_ns / 1e9, tz=UTC)


def trace_list(request):
    """Recent traces of this shop (where each process's part of a trace begins), newest first."""
    _check_permission(request)
    order_no = request.GET.get("order_no", "").strip()
    entries = TraceSpan.objects.filter(entry=True)
    if order_no:
        entries = entries.filter(trace_id__in=TraceSpan.objects.filter(order_no=order_no).values("trace_id"))
    entries = list(entries.order_by("-start_ns")[:RECENT_TRACES])
    trace_ids = {entry.trace_id for entry in entries}
    order_nos: dict[str, set[str]] = {}
    for trace_id, number in (
        TraceSpan.objects.filter(trace_id__in=trace_ids).exclude(order_no="").values_list("trace_id", "order_no")
    ):
        order_nos.setdefault(trace_id, set()).add(number)
    failed = set(TraceSpan.objects.filter(trace_id__in=trace_ids, error=True).values_list("trace_id", flat=True))
    rows = [
        {
            "span": entry,
            "started": _when(entry.start_ns),
            "duration_ms": entry.duration_ns / 1e6,
            "order_nos": sorted(order_nos.get(entry.trace_id, ())),
            "error": entry.trace_id in failed,
        }
        for entry in entries
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Traces of order {order_no}" if order_no else "Recent traces",
        "order_no": order_no,
        "rows": rows,
        "limit": RECENT_TRACES,
        "dropped": DroppedSpans.objects.aggregate(count=Sum("count"), since=Min("since")),
    }
    return TemplateResponse(request, "traces/trace_list.html", context)
