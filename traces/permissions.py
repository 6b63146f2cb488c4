"""The one name of the permission to open traces (the built-in view checks it; trace links are shown only with it)."""

VIEW_TRACES = "traces.view_tracespan"


def may_view_traces(user) -> bool:
    """Tell whether the user may open traces (and so be shown links to them)."""
    return user.has_perm(VIEW_TRACES)
