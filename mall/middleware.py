"""Request edges that Django's own handlers do not cover: JSON 404s under DEBUG, trace ids in late logs."""

from opentelemetry import trace

from mall.api.error_views import not_found


class TraceContextOnRequestMiddleware:
    """Keeps the server span's context on the request as ``request.span_context``.

    Django logs 4xx/5xx answers (``django.request``'s "Too Many Requests: …") after the middleware
    chain returned, when the server span has already ended; the log filter finds the trace there.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.span_context = trace.get_current_span().get_span_context()
        return self.get_response(request)


class ApiNotFoundMiddleware:
    """An unknown path under /api/ is a JSON 404 ``not_found``, with DEBUG on too.

    With DEBUG off ``handler404`` does this; with DEBUG on Django answers its HTML debug page
    instead. Only URLs that matched no route are touched (``resolver_match`` is unset): a view's
    own 404 keeps its body, and a redirect to the URL with a slash (``APPEND_SLASH``) still happens
    as this middleware sits outside ``CommonMiddleware``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 404 and request.path.startswith("/api/") and request.resolver_match is None:
            return not_found(request)
        return response
