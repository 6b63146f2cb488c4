"""Base class of the domain errors; each app defines its own in ``<app>/errors.py``.

Domain errors know nothing of HTTP: ``mall.api.exceptions`` maps their codes to statuses.
"""


class DomainError(Exception):
    """The shop did not carry out an operation. ``code`` is stable: clients switch on it.

    Almost always a refusal: a business rule said no, which is the caller's answer, not a failure
    of the shop. ``fault = True`` marks the few that are failures of the shop itself.
    """

    code = "domain_error"
    default_detail = "The operation was refused."
    fault = False

    def __init__(self, detail: str | None = None, **extra):
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, **self.extra}


# Of mall.auth, defined here so that the API layer's mapping of errors to statuses and the log-in views that
# answer with it do not import each other.
def lockout_detail() -> str:
    """Say how long a locked username stays locked (django-axes' cool-off, ``MALL_LOGIN_COOLOFF_SECONDS``)."""
    from django.conf import settings

    minutes = max(1, round(settings.MALL_LOGIN_COOLOFF_SECONDS / 60))
    return (
        f"Too many failed log-ins for this username from this address: it is locked for {minutes} minute(s) "
        "after the last failure, the right password included."
    )


class LoginLocked(DomainError):
    code = "login_locked"

    def __init__(self):
        from django.conf import settings

        super().__init__(lockout_detail())
        self.retry_after = settings.MALL_LOGIN_COOLOFF_SECONDS  # seconds: the answer's Retry-After
