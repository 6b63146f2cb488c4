"""Login guessing protection (django-axes): the 429 answers of a locked username, in one place.

django-axes counts failed logins per username (``AXES_LOCKOUT_PARAMETERS``) in the database, so
every worker process sees the same count. Django's own log-in views (``/admin/login/``, the
browsable API's ``/api/auth/login/``) are answered by ``lockout_response`` through axes'
middleware. DRF's token view authenticates with DRF's request wrapper, which axes marks instead
of Django's request: ``ObtainAuthTokenUnlessLocked`` turns that mark into ``LoginLocked``.
"""

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.utils import reset as reset_failed_logins
from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse, JsonResponse
from django.utils.html import format_html
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from mall.api.exceptions import status_for
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
    """AXES_LOCKOUT_CALLABLE: 429, JSON under /api/, a short page elsewhere (the admin log-in)."""
    locked = status_for(LoginLocked())
    seconds = str(settings.MALL_LOGIN_COOLOFF_SECONDS)
    if request.path.startswith("/api/"):
        body = {"code": LoginLocked.code, "detail": lockout_detail()}
        return JsonResponse(body, status=locked, headers={"Retry-After": seconds})
    page = format_html("<!doctype html><title>Log-in locked</title><h1>Log-in locked</h1><p>{}</p>", lockout_detail())
    return HttpResponse(page, status=locked, headers={"Retry-After": seconds})


class LoginRateThrottle(AnonRateThrottle):
    """Token requests per client address, at ``settings.MALL_LOGIN_THROTTLE_RATE`` (None: unlimited), whoever
    is named: a guesser cycling usernames (which no lock counts) is slowed here."""

    scope = "login"
    cache = caches["throttle"]  # shared by every worker process, as the checkout throttle's

    def get_rate(self):
        return settings.MALL_LOGIN_THROTTLE_RATE

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
