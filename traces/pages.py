"""Staff pages of the trace store under /admin/traces/: the search (list and scatter plot), the monitor (per
operation, with latency charts) and one trace explained."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Min, Sum
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from traces.detail import TRACE_ID, explain_trace, when
from traces.models import DroppedSpans, TraceSpan
from traces.monitor import DEFAULT_WINDOW, MAX_WINDOW, MIN_WINDOW, WINDOWS, monitor
from traces.permissions import may_view_traces
from traces.scatter import scatter
from traces.search import TraceSearchForm, search_traces

WINDOW_LABELS = {15 * 60: "15 min", 3600: "1 hour", 24 * 3600: "24 hours"}
CHART_WIDTH, CHART_HEIGHT, CHART_PAD, CHART_AXIS = 320, 64, 2, 11  # px; the axis: the time labels below


def _check_permission(request) -> None:
    if not may_view_traces(request.user):
        raise PermissionDenied


PAGE_LIMIT = 100  # the page lists more than the JSON's default: the scatter plot shows where they lie


def trace_list(request):
    """Search the stored traces (``traces.search``): the form, the result list and a duration-over-time plot."""
    _check_permission(request)
    params = request.GET.copy()
    if not params.get("limit"):
        params["limit"] = str(PAGE_LIMIT)
    form = TraceSearchForm(params)
    results, status = [], 200
    if form.is_valid():
        results = search_traces(form.query())
    else:
        status = 400
    order_no = form.cleaned_data.get("order_no", "") if hasattr(form, "cleaned_data") else ""
    searched = {name for name, value in request.GET.items() if value and name != "limit"}
    context = {
        **admin.site.each_context(request),
        "title": f"Traces of order {order_no}" if order_no and searched == {"order_no"} else "Traces",
        "form": form,
        "order_no": order_no,
        "searched": bool(searched),
        "rows": _rows(results),
        "plot": scatter(results, trace_url=_trace_url),
        "limit": form.cleaned_data.get("limit") if status == 200 else PAGE_LIMIT,
        "dropped": DroppedSpans.objects.aggregate(count=Sum("count"), since=Min("since")),
    }
    return TemplateResponse(request, "traces/trace_list.html", context, status=status)


def _trace_url(trace_id: str) -> str:
    return f"{reverse('trace-list')}{trace_id}/"  # the trace-detail route, without a resolver pass per row


def _rows(results: list[dict]) -> list[dict]:
    """The result list's rows, their texts made here: a page of 500 rows renders in a few template lookups each."""
    return [
        {
            **result,
            "url": _trace_url(result["trace_id"]),
            "started": result["start"][:23].replace("T", " "),
            "duration": f"{result['duration_ms']:.1f} ms",
            "order_url": f"?order_no={quote(result['order_no'])}" if result["order_no"] else "",
        }
        for result in results
    ]


def parse_window(value: str | None) -> int:
    """Return the window in seconds from a query parameter; ValueError names what is wrong."""
    if value in (None, ""):
        return DEFAULT_WINDOW
    if not value.isdigit() or not MIN_WINDOW <= int(value) <= MAX_WINDOW:
        raise ValueError(f"window is a whole number of seconds from {MIN_WINDOW} to {MAX_WINDOW}.")
    return int(value)


def _chart(series: list[dict], *, width: int = CHART_WIDTH, height: int = CHART_HEIGHT) -> dict:
    """The SVG points of an operation's p50 and p95 lines, scaled to the operation's highest p95."""
    # A quarter above the highest p95: a steady p95 runs across the chart, not along its top edge.
    top = 1.25 * max((point["p95_ms"] for point in series if point["p95_ms"] is not None), default=0) or 1
    step = (width - 2 * CHART_PAD) / max(len(series) - 1, 1)

    bottom = height - CHART_AXIS

    def y(value: float) -> float:
        return round(bottom - (bottom - 2 * CHART_PAD - 10) * value / top, 1)  # 10: the top label's room

    lines = {}
    for key in ("p50_ms", "p95_ms"):
        lines[key] = " ".join(
            f"{round(CHART_PAD + index * step, 1)},{y(point[key])}"
            for index, point in enumerate(series)
            if point[key] is not None
        )
    dots = [
        {
            "x": round(CHART_PAD + index * step, 1),
            "y": y(point["p95_ms"]),
            "y50": y(point["p50_ms"]),
            # The tooltip, formatted here: template filters on each of hundreds of points cost more.
            "title": f"{when(point['start_ns']):%H:%M:%S}: {point['count']} span{'s' if point['count'] != 1 else ''}, "
            f"p50 {point['p50_ms']:.2f} ms, p95 {point['p95_ms']:.2f} ms",
        }
        for index, point in enumerate(series)
        if point["p95_ms"] is not None
    ]
    return {
        "p50": lines["p50_ms"],
        "p95": lines["p95_ms"],
        "top_ms": top,
        "dots": dots,
        "axis_y": bottom + 0.5,
        "label_y": height - 2,
        "first": when(series[0]["start_ns"]) if series else None,
    }


def monitor_page(request):
    """The monitor: each operation of the chosen window with rate, errors, refusals, percentiles and a chart."""
    _check_permission(request)
    context = {
        **admin.site.each_context(request),
        "title": "Trace monitor",
        "windows": [(seconds, WINDOW_LABELS[seconds]) for seconds in WINDOWS],
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
    }
    try:
        window = parse_window(request.GET.get("window"))
    except ValueError as exc:
        context.update(window=None, error=str(exc), rows=[])
        return TemplateResponse(request, "traces/monitor.html", context, status=400)
    result = monitor(window=window)
    search = reverse("trace-list")
    rows = [
        {
            "operation": operation,
            "error_share": operation.errors / operation.count if operation.count else 0,
            "refusal_share": operation.refusals / operation.count if operation.count else 0,
            "search_url": f"{search}?{urlencode({'operation': operation.name, 'sort': 'duration'})}",
            "chart": _chart(operation.series),
        }
        for operation in result.operations
    ]
    context.update(
        window=window,
        window_label=WINDOW_LABELS.get(window, f"{window} s"),
        since=when(result.since_ns),
        until=when(result.until_ns),
        rows=rows,
        sampled=result.sampled,
    )
    return TemplateResponse(request, "traces/monitor.html", context)


def trace_detail(request, trace_id: str):
    """One trace as a tree and a waterfall, explained: self time, critical path, each span against its p95."""
    _check_permission(request)
    trace_id = trace_id.lower()
    if not TRACE_ID.fullmatch(trace_id):
        raise Http404("A trace id is 32 hexadecimal digits.")
    linked_from = list(
        TraceSpan.objects.filter(linked_trace_id=trace_id)
        .exclude(trace_id=trace_id)
        .values("trace_id", "name", "order_no")
        .order_by("start_ns")[:50]
    )
    context = {
        **admin.site.each_context(request),
        "title": f"Trace {trace_id}",
        "trace_id": trace_id,
        "linked_from": linked_from,
        "spans": [],
    }
    trace = explain_trace(trace_id)
    if trace is None:
        return TemplateResponse(request, "traces/trace_detail.html", context, status=404)
    begin = trace.begin_ns
    total = max(trace.end_ns - begin, 1)
    spans = [item.span for item in trace.spans]
    context.update(
        started=when(begin),
        duration_ms=total / 1e6,
        order_nos=sorted({span.order_no for span in spans if span.order_no}),
        services=sorted({span.service for span in spans if span.service}),
        critical_count=sum(1 for item in trace.spans if item.critical_ns),
        above_p95_count=sum(1 for item in trace.spans if item.above_p95),
        spans=[
            {
                "span": item.span,
                "depth": item.depth,
                "indent": item.depth * 14,
                "offset_ms": (item.span.start_ns - begin) / 1e6,
                "duration_ms": item.span.duration_ns / 1e6,
                "self_ms": item.self_ns / 1e6,
                "critical": bool(item.critical_ns),
                "critical_ms": item.critical_ns / 1e6,
                "critical_sections": [
                    {"left": 100 * (start - begin) / total, "width": max(100 * (end - start) / total, 0.2)}
                    for start, end in item.critical
                ],
                "history": item.history,
                "above_p95": item.above_p95,
                "left": 100 * (item.span.start_ns - begin) / total,
                "width": max(100 * item.span.duration_ns / total, 0.3),
                "attributes": [
                    (key, value, key == "db.statement" or key.endswith(".query.text"))
                    for key, value in sorted(item.span.detail.get("attributes", {}).items())
                ],
                "events": item.span.detail.get("events", []),
                "links": item.span.detail.get("links", []),
                "status": item.span.detail.get("status", ""),
            }
            for item in trace.spans
        ],
    )
    return TemplateResponse(request, "traces/trace_detail.html", context)
