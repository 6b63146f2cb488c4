"""Views of the project itself (not of an app's resources)."""

from pathlib import Path

from django.http import HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

_FAVICON = (Path(__file__).parent / "static" / "mall" / "favicon.ico").read_bytes()


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request):
    """Answer the browser's /favicon.ico with the shop's icon (a 404 here would log a warning per page)."""
    return HttpResponse(_FAVICON, content_type="image/x-icon")
