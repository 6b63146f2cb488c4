"""The search page's scatter plot: each found trace as a point, start time across, duration up (server-side SVG)."""

from __future__ import annotations

from datetime import UTC, datetime

WIDTH, HEIGHT = 900, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 36  # margins for the axes' labels


def _ticks(top: float) -> list[float]:
    """Up to five round duration marks from 0 to at least ``top``."""
    step = 1.0
    for candidate in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000):
        step = candidate
        if top / candidate <= 4:
            break
    else:
        step = top / 4
    return [step * n for n in range(int(top // step) + 2)]


def scatter(results: list[dict], *, trace_url) -> dict | None:
    """The plot's points and axes for the template, or None without results.

    ``results`` are ``traces.search.search_traces``'s; ``trace_url(trace_id)`` is where a point leads; a
    point's radius grows with its span count.
    """
    if not results:
        return None
    starts = [datetime.fromisoformat(result["start"]).timestamp() for result in results]
    begin, end = min(starts), max(starts)
    span = max(end - begin, 1e-3)
    y_ticks = _ticks(max(result["duration_ms"] for result in results) or 1.0)
    y_top = y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: float) -> float:
        return LEFT + plot_w * ((moment - begin) / span if end > begin else 0.5)

    def y(duration_ms: float) -> float:
        return TOP + plot_h * (1 - duration_ms / y_top)

    points = [
        {
            "trace_id": result["trace_id"],
            "url": trace_url(result["trace_id"]),
            "x": round(x(moment), 1),
            "y": round(y(result["duration_ms"]), 1),
            "r": round(min(3 + result["span_count"] ** 0.5 / 2, 9), 1),
            "outcome": result["outcome"],
            "title": f"{result['root']['name']} · {result['duration_ms']:.1f} ms · {result['outcome']} · "
            f"{result['start'][11:23]} UTC" + (f" · order {result['order_no']}" if result["order_no"] else ""),
        }
        for moment, result in zip(starts, results, strict=True)
    ]
    points.sort(key=lambda point: point["outcome"] != "ok")  # errors and refusals drawn last: on top
    # Milliseconds when the results lie within a minute (a burst of checkouts), else seconds; the date once a day ends.
    shape = "%H:%M:%S.%f" if span < 60 else "%m-%d %H:%M:%S" if span > 86400 / 2 else "%H:%M:%S"

    def label(moment: float) -> str:
        text = datetime.fromtimestamp(moment, UTC).strftime(shape)
        return text[:-3] if shape.endswith("%f") else text

    x_labels = [
        {"x": round(x(moment), 1), "text": label(moment)}
        for moment in ((begin, (begin + end) / 2, end) if end > begin else (begin,))
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "label_y": HEIGHT - BOTTOM + 16,
        "caption_y": HEIGHT - 4,
        "points": points,
        "y_ticks": [{"y": round(y(tick), 1), "text": f"{tick:g} ms"} for tick in y_ticks],
        "x_labels": x_labels,
    }
