"""Read typed values from the environment for the settings and gunicorn.conf.py, each failing in one line.

A value that is not what its variable takes raises ``ImproperlyConfigured`` naming the variable;
``mall.startup`` turns it into the process's one-line exit. An unset (or, for the typed readers, blank)
variable takes its default.
"""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_str(name: str, default: str = "") -> str:
    """Return the variable stripped of surrounding blanks, or ``default`` when it is unset (set blank, it is "")."""
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    """Return on/off (1/0, true/false, yes/no, any case); anything else is a configuration error."""
    value = env_str(name).lower()
    if not value:
        return default
    if value not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name} must be on or off, not {value!r}")
    return value in _TRUE


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Return a whole number of at least ``minimum``; anything else is a configuration error."""
    value = env_str(name) or str(default)
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ImproperlyConfigured(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return number


def env_choice(name: str, choices: set[str], default: str = "") -> str:
    """Return a lower-cased choice among ``choices`` (a comma list takes its first item, as the OTel SDK does)."""
    value = env_str(name).lower().split(",")[0].strip() or default
    if value and value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(sorted(choices))}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    """Return the comma-separated items of the variable (or of ``default``), blanks dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]
