"""Staff views of the built-in trace store: the trace search (list and scatter plot) and one trace as a waterfall."""

import re
from datetime import UTC, datetime
from urllib.parse import quote

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Min, Sum
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse

from traces.models import DroppedSpans, TraceSpan
from traces.permissions import may_view_traces
from traces.scatter import scatter
from traces.search import TraceSearchForm, search_traces

TRACE_ID = re.compile(r"[0-9a-f]{32}")
MAX_SPANS_SHOWN = 2000


def _check_permission(request) -> None:
    if not may_view_traces(request.user):
        raise PermissionDenied


def _when(start_ns: int) -> datetime:
    return datetime.fromtimestamp(start_ns / 1e9, tz=UTC)


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


def _tree(spans: list[TraceSpan]) -> list[tuple[int, TraceSpan]]:
    """(depth, span) in tree order: each span after its parent, siblings by start time."""
    ids = {span.span_id for span in spans}
    children: dict[str, list[TraceSpan]] = {}
    roots = []
    for span in spans:  # already ordered by start
        if span.parent_span_id and span.parent_span_id in ids:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    ordered: list[tuple[int, TraceSpan]] = []
    stack = [(0, span) for span in reversed(roots)]
    while stack:
        depth, span = stack.pop()
        ordered.append((depth, span))
        stack.extend((depth + 1, child) for child in reversed(children.get(span.span_id, [])))
    return ordered


def trace_detail(request, trace_id: str):
    """One trace as a tree and a waterfall: name, kind, start offset, duration, attributes, errors, links."""
    _check_permission(request)
    trace_id = trace_id.lower()
    if not TRACE_ID.fullmatch(trace_id):
        raise Http404("A trace id is 32 hexadecimal digits.")
    spans = list(TraceSpan.objects.filter(trace_id=trace_id).order_by("start_ns", "id")[:MAX_SPANS_SHOWN])
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
    if not spans:
        return TemplateResponse(request, "traces/trace_detail.html", context, status=404)
    begin = min(span.start_ns for span in spans)
    total = max(max(span.start_ns + span.duration_ns for span in spans) - begin, 1)
    context.update(
        started=_when(begin),
        duration_ms=total / 1e6,
        order_nos=sorted({span.order_no for span in spans if span.order_no}),
        services=sorted({span.service for span in spans if span.service}),
        spans=[
            {
                "span": span,
                "depth": depth,
                "indent": depth * 14,
                "offset_ms": (span.start_ns - begin) / 1e6,
                "duration_ms": span.duration_ns / 1e6,
                "left": 100 * (span.start_ns - begin) / total,
                "width": max(100 * span.duration_ns / total, 0.3),
                "attributes": sorted(span.detail.get("attributes", {}).items()),
                "events": span.detail.get("events", []),
                "links": span.detail.get("links", []),
                "status": span.detail.get("status", ""),
            }
            for depth, span in _tree(spans)
        ],
    )
    return TemplateResponse(request, "traces/trace_detail.html", context)
