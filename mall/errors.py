"""Base class of the domain errors; each app defines its own, mapped to HTTP in ``mall.api``."""


class DomainError(Exception):
    """A business rule refused the operation. ``code`` is stable: clients switch on it."""

    status_code = 400
    code = "domain_error"
    default_detail = "The operation was refused."

    def __init__(self, detail: str | None = None, **extra):
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, **self.extra}
