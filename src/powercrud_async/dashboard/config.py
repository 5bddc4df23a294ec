"""``POWERCRUD_SETTINGS["DASHBOARD"]``: every dashboard option in one validated place."""

from __future__ import annotations

import difflib
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .. import conf

#: The columns the list can show, in their default order.
ALL_COLUMNS = ("task", "status", "progress", "user", "created", "updated", "duration", "affected")

DEFAULTS: dict[str, Any] = {
    "TITLE": "Background jobs",
    "REFRESH_INTERVAL": 5,
    "PROGRESS_INTERVAL": 1,
    "PAGE_SIZE": 25,
    "PAGE_SIZES": [10, 25, 50, 100],
    "COLUMNS": ["task", "status", "progress", "user", "created", "updated", "duration"],
    "VIEW_ACCESS": "staff",
    "ACTION_ACCESS": "staff",
    "OWN_TASKS_ONLY": False,
    "RECORD_MODEL": None,
    "ADMIN": True,
    "EXPORT_LIMIT": 50_000,
    "RECENT_WINDOW_HOURS": 24,
    "STUCK_QUEUE_AFTER": 120,
}

_TYPES: dict[str, tuple[type, ...]] = {
    "TITLE": (str,),
    "REFRESH_INTERVAL": (int, float),
    "PROGRESS_INTERVAL": (int, float),
    "PAGE_SIZE": (int,),
    "PAGE_SIZES": (list, tuple),
    "COLUMNS": (list, tuple),
    "VIEW_ACCESS": (str,),
    "ACTION_ACCESS": (str,),
    "OWN_TASKS_ONLY": (bool,),
    "RECORD_MODEL": (str, type(None)),
    "ADMIN": (bool,),
    "EXPORT_LIMIT": (int,),
    "RECENT_WINDOW_HOURS": (int,),
    "STUCK_QUEUE_AFTER": (int, float),
}


def _fail(key: str, value: Any, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f'POWERCRUD_SETTINGS["DASHBOARD"][{key!r}] is {value!r}; expected {expected}.'
    )


def _validate(key: str, value: Any) -> None:  # noqa: C901 - one flat list of rules
    types = _TYPES[key]
    callable_ok = key in ("VIEW_ACCESS", "ACTION_ACCESS") and callable(value)
    if callable_ok:
        return
    if isinstance(value, bool) and bool not in types:
        raise _fail(key, value, " or ".join(t.__name__ for t in types))
    matches = isinstance(value, types)
    if not matches:
        raise _fail(
            key, value, " or ".join("None" if t is type(None) else t.__name__ for t in types)
        )
    if key in ("REFRESH_INTERVAL", "PROGRESS_INTERVAL", "EXPORT_LIMIT") and value < 0:
        raise _fail(key, value, "a number >= 0")
    if key in ("PAGE_SIZE", "RECENT_WINDOW_HOURS", "STUCK_QUEUE_AFTER") and value < 1:
        raise _fail(key, value, "a positive integer")
    if key == "PAGE_SIZES" and not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise _fail(key, value, "a list of positive integers")
    if key == "COLUMNS":
        unknown = [c for c in value if not isinstance(c, str)]
        if unknown or not value:
            raise _fail(key, value, "a non-empty list of column names")


def dashboard_config() -> dict[str, Any]:
    """The merged dashboard options (read through ``conf``, so ``override_settings`` works)."""
    raw = conf.get("DASHBOARD") or {}
    merged = dict(DEFAULTS)
    for key, value in raw.items():
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key).upper(), DEFAULTS, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ImproperlyConfigured(
                f'POWERCRUD_SETTINGS["DASHBOARD"] has an unknown key {key!r}.{hint} '
                f"Known keys: {', '.join(sorted(DEFAULTS))}."
            )
        _validate(key, value)
        merged[key] = value
    if merged["PAGE_SIZE"] not in merged["PAGE_SIZES"]:
        merged["PAGE_SIZES"] = sorted({*merged["PAGE_SIZES"], merged["PAGE_SIZE"]})
    return merged
