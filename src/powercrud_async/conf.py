"""The single reader of ``POWERCRUD_SETTINGS``: typed, validated, cached, reset on change."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTINGS_NAME = "POWERCRUD_SETTINGS"

Number = (int, float)


@dataclass(frozen=True, slots=True)
class Option:
    """One documented setting: its default, the types it accepts, and why it exists."""

    default: Any
    types: tuple[type, ...]
    doc: str
    choices: tuple[str, ...] = ()


OPTIONS: dict[str, Option] = {
    "ASYNC_ENABLED": Option(
        False, (bool,), "View mixins launch background jobs (else they run the job in the request)."
    ),
    "CACHE_NAME": Option("default", (str,), "Cache alias for progress and task status."),
    "CONFLICT_TTL": Option(3600, (int,), "Seconds a lock lives without a heartbeat renewing it."),
    "PROGRESS_TTL": Option(7200, (int,), "Seconds progress and status entries stay in the cache."),
    "CLEANUP_GRACE_PERIOD": Option(
        86400,
        (int,),
        "Seconds a finished job's artefacts stay inspectable before cleanup purges them.",
    ),
    "MAX_TASK_DURATION": Option(
        3600, (int,), "Seconds after which a live job is reported overdue and asked to cancel."
    ),
    "CLEANUP_SCHEDULE_INTERVAL": Option(
        300, (int,), "Seconds between scheduled cleanups (the django-q2 Schedule)."
    ),
    "QCLUSTER_PROBE_TIMEOUT_MS": Option(300, (int,), "How long validate_async_qcluster waits."),
    "ASYNC_MANAGER_DEFAULT": Option(
        None,
        (dict, type(None)),
        'The project default manager: {"manager_class": ..., "config": {...}}.',
    ),
    "HEARTBEAT_INTERVAL": Option(5, Number, "Seconds between a running job's heartbeats."),
    "LOCK_STORE": Option(
        "database",
        (str,),
        "Where locks and the live-task registry live: 'database' or 'redis'.",
        choices=("database", "redis"),
    ),
    "REDIS_URL": Option(None, (str, type(None)), "Redis URL for the 'redis' lock store."),
    "PROGRESS_WRITE_INTERVAL": Option(
        1.0, Number, "Seconds between coalesced progress writes (cache and lifecycle records)."
    ),
    "RECORD_WRITE_DELAY": Option(
        0.1,
        Number,
        "Seconds a cluster worker holds a finished job's record write, to write the ends of "
        "the jobs that finished meanwhile in one transaction (0: each at once).",
    ),
    "WORKER_SQLITE_CONNECTION_AGE": Option(
        60,
        Number,
        "Seconds a cluster worker keeps a SQLite connection open between jobs where "
        "CONN_MAX_AGE is 0 (django-q2 closes connections before every job; 0: it does).",
    ),
    "STORE_RETRIES": Option(5, (int,), "Retries of a store operation that hit a transient error."),
    "TIMELINE_MAX_EVENTS": Option(
        200, (int,), "Timeline events kept per task (0 switches it off)."
    ),
    "TASK_LOG_MAX_RECORDS": Option(
        500, (int,), "Log records captured per task (0 switches it off)."
    ),
    "TASK_LOG_LEVEL": Option("INFO", (str,), "Lowest level of job log records captured."),
    "PROGRESS_VISIBILITY": Option(
        "owner_or_staff",
        (str,),
        "Who may poll a task launched by a user: 'owner_or_staff', 'staff', or a dotted path "
        "to a callable (request, task_info) -> bool.",
    ),
    "DASHBOARD": Option({}, (dict,), "Dashboard options: see the dashboard page."),
    "REDACT_ARGUMENTS": Option(
        ("password", "secret", "token", "key", "auth", "credential"),
        (list, tuple),
        "Keyword-argument names containing any of these (case-insensitive) are masked on the "
        "dashboard, the admin, exports and lifecycle records.",
    ),
    "KEEP_SENSITIVE_ARGUMENTS": Option(
        False, (bool,), "Lifecycle records keep the unmasked values of redacted arguments."
    ),
}


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


def _check_value(key: str, value: Any, option: Option) -> None:
    accepts_bool = bool in option.types
    if isinstance(value, bool) and not accepts_bool:
        ok = False
    else:
        ok = isinstance(value, option.types)
    if not ok:
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}[{key!r}] is {value!r} ({type(value).__name__}); "
            f"expected {_type_names(option.types)}."
        )
    if option.choices and value not in option.choices:
        allowed = ", ".join(repr(c) for c in option.choices)
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}[{key!r}] is {value!r}; expected one of {allowed}."
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}[{key!r}] is {value!r}; expected a number >= 0."
        )


def user_settings() -> dict[str, Any]:
    """The raw ``POWERCRUD_SETTINGS`` dict (validated to be a dict)."""
    raw = getattr(settings, SETTINGS_NAME, None) or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME} is {raw!r} ({type(raw).__name__}); expected dict."
        )
    return raw


@cache
def get_config() -> dict[str, Any]:
    """Every known key merged over its default; raises ImproperlyConfigured on a wrong type."""
    raw = user_settings()
    config: dict[str, Any] = {}
    for key, option in OPTIONS.items():
        value = raw.get(key, option.default)
        _check_value(key, value, option)
        config[key] = value
    return config


def get(key: str) -> Any:
    """One setting's effective value."""
    if key not in OPTIONS:
        raise KeyError(f"{key!r} is not a powercrud_async setting")
    return get_config()[key]


def unknown_keys() -> list[tuple[str, str | None]]:
    """Keys in POWERCRUD_SETTINGS we do not know, each with the nearest known key (or None)."""
    result = []
    for key in user_settings():
        if key not in OPTIONS:
            close = difflib.get_close_matches(str(key).upper(), OPTIONS, n=1, cutoff=0.6)
            result.append((key, close[0] if close else None))
    return result


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, "CACHES", "Q_CLUSTER"):
        get_config.cache_clear()
