"""The one name of the permission to open traces (the built-in view and its JSON check it; trace links are shown only
with it)."""

from rest_framework.permissions import BasePermission

VIEW_TRACES = "traces.view_tracespan"


def may_view_traces(user) -> bool:
    """Tell whether the user may open traces (and so be shown links to them)."""
    return user.has_perm(VIEW_TRACES)


class MayViewTraces(BasePermission):
    """Let in the users with the store's view permission (``is_staff`` alone is not enough)."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and may_view_traces(request.user))
