"""Login guessing protection (django-axes): the 429 answers of a locked username, in one place.

django-axes counts failed logins per username (``AXES_LOCKOUT_PARAMETERS``) in the database, so
every worker process sees the same count. Django's own log-in views (``/admin/login/``, the
browsable API's ``/api/auth/login/``) are answered by ``lockout_response`` through axes'
middleware. DRF's token view authenticates with DRF's request wrapper, which axes marks instead
of Django's request: ``ObtainAuthTokenUnlessLocked`` turns that mark into ``LoginLocked``.

Every log-in (token and both forms) also counts against one per-address rate, ``MALL_LOGIN_THROTTLE_RATE``,
in the shared "throttle" cache: the token view through DRF's throttle, the forms through
``LoginFormThrottleMiddleware``. The forms' refusals are styled pages (``refused_login_page``) with Retry-After.
"""

import math
from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.utils import reset as reset_failed_logins
from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timeuntil
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from mall.api.exceptions import status_for
from mall.edge import client_address
from mall.errors import LoginLocked, lockout_detail


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check, first in AUTHENTICATION_BACKENDS. Every HTTP log-in passes its request; a call
    without one (Django's test client ``login()``, a shell) is no HTTP log-in and is not counted."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class LockAfterTheLimitHandler(AxesDatabaseHandler):
    """Axes' database handler, answering the failure that reaches the limit as the wrong password it is:
    the limit's failures each get "wrong password", the attempt after them (right password included) 429."""

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        locked_before = getattr(request, "axes_locked_out", False)
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and not locked_before:
            request.axes_locked_out = False  # the lock is in the database; it refuses the next attempt


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE for Django's log-in forms: 429 with Retry-After, a styled page (JSON for a client
    that does not take HTML)."""
    return refused_login_page(
        request,
        code=LoginLocked.code,
        heading="Log-in locked",
        reason=lockout_detail(),
        retry_after=settings.MALL_LOGIN_COOLOFF_SECONDS,
    )


def throttled_response(request, retry_after: int) -> HttpResponse:
    """The answer of a log-in form past ``MALL_LOGIN_THROTTLE_RATE``: 429 ``throttled`` with Retry-After."""
    return refused_login_page(
        request,
        code="throttled",
        heading="Too many log-in attempts",
        reason="Your address made more log-in attempts than the shop allows, whatever the usernames.",
        retry_after=retry_after,
    )


def _wait_words(seconds: int, retry_at, now) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return timeuntil(retry_at + timedelta(seconds=59), now, depth=1)  # rounded up to the minute, never down


def refused_login_page(request, *, code: str, heading: str, reason: str, retry_after: int) -> HttpResponse:
    """Answer a refused log-in form with 429: the admin's look under /admin/, the browsable API's elsewhere."""
    status = status_for(LoginLocked())  # 429, as every refusal of a log-in
    headers = {"Retry-After": str(retry_after)}
    if not request.accepts("text/html"):  # a script posting to the form: the API's error body
        return JsonResponse({"code": code, "detail": reason}, status=status, headers=headers)
    now = timezone.now()
    retry_at = timezone.localtime(now + timedelta(seconds=retry_after))
    context = {
        "heading": heading,
        "reason": reason,
        "retry_at": retry_at,
        "wait": _wait_words(retry_after, retry_at, now),
        "exact": retry_after < 60,
        "login_url": request.get_full_path(),
    }
    if request.path.startswith(reverse("admin:index")):
        from django.contrib import admin

        context |= admin.site.each_context(request)
        template = "mall/login_refused_admin.html"
    else:
        template = "mall/login_refused_api.html"
    return HttpResponse(render_to_string(template, context, request=request), status=status, headers=headers)


class LoginRateThrottle(AnonRateThrottle):
    """Token requests per client address, at ``settings.MALL_LOGIN_THROTTLE_RATE`` (None: unlimited), whoever
    is named: a guesser cycling usernames (which no lock counts) is slowed here."""

    scope = "login"
    cache = caches["throttle"]  # shared by every worker process, as the checkout throttle's

    def get_rate(self):
        return settings.MALL_LOGIN_THROTTLE_RATE

    def get_ident(self, request):
        return client_address(request)  # the same address axes locks by

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ObtainAuthTokenUnlessLocked(ObtainAuthToken):
    """POST /api/auth/token/: DRF's token view, answering 429 ``login_locked`` for a locked username and
    429 ``throttled`` past the per-address rate."""

    throttle_classes = [LoginRateThrottle]

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            if getattr(request, "axes_locked_out", False):
                raise LoginLocked()
            raise ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        # Failures count while consecutive (AXES_RESET_ON_SUCCESS); axes resets on Django's
        # user_logged_in, which issuing a token does not send.
        reset_failed_logins(username=user.get_username())
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class LoginFormThrottleMiddleware:
    """Count each POST to a log-in form (the admin's, the browsable API's) against the per-address login rate
    the token endpoint uses (one count per address for all three), answering 429 past it before any password
    is checked."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._forms: frozenset[str] | None = None

    def _login_forms(self) -> frozenset[str]:
        if self._forms is None:  # reverse() needs the URLconf, not loaded yet when middleware is built
            self._forms = frozenset({reverse("admin:login"), reverse("rest_framework:login")})
        return self._forms

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path in self._login_forms():
            throttle = LoginRateThrottle()
            if not throttle.allow_request(request, None):
                return throttled_response(request, max(1, math.ceil(throttle.wait() or 1)))
        return self.get_response(request)
