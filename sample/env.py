"""Read the production tier from environment variables: a PostgreSQL URL and a Redis URL.

Parsed with ``urllib`` so the sample needs nothing beyond the package's own dependencies.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def database_from_url(url: str) -> dict[str, Any]:
    """``DATABASES["default"]`` for ``postgres://user:password@host:port/name?sslmode=require``."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with one of {', '.join(s + '://' for s in POSTGRES_SCHEMES)}; "
            f"got {parts.scheme or 'no scheme'!r}. Unset it to use the embedded SQLite database."
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL names no database (postgres://host:5432/<name>).")
    try:
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL has an invalid port: {exc}") from exc
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def check_redis_url(url: str) -> str:
    """The URL itself, once it looks like one redis-py's ``from_url`` accepts."""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise ImproperlyConfigured(
            f"REDIS_URL must start with redis://, rediss:// or unix://; got {parts.scheme or 'no scheme'!r}."
        )
    return url


def flag(value: str | None, default: bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (case-insensitive); ``default`` when unset."""
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"Expected a yes/no value, got {value!r}.")
