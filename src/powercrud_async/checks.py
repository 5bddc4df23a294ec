"""System checks (``powercrud_async.E0xx``/``W0xx``): misconfiguration found at startup, each
with a hint, instead of a crash in a worker."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import conf
from .exceptions import InvalidManagerClass

PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
DATABASE_CACHE = "django.core.cache.backends.db.DatabaseCache"
MIN_CACHE_ENTRIES = 10_000


def _id(code: str) -> str:
    return f"powercrud_async.{code}"


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    try:
        conf.get_config()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Fix the value in POWERCRUD_SETTINGS.", id=_id("E001"))]
    for key, nearest in conf.unknown_keys():
        hint = (
            f"Did you mean {nearest!r}?"
            if nearest
            else "See the settings reference for the known keys."
        )
        messages.append(
            checks.Warning(
                f"POWERCRUD_SETTINGS has an unknown key {key!r}.", hint=hint, id=_id("W001")
            )
        )
    messages.extend(_check_cache())
    messages.extend(_check_django_q())
    messages.extend(_check_manager())
    messages.extend(_check_store())
    messages.extend(_check_sqlite())
    messages.extend(_check_htmx())
    messages.extend(_check_export())
    return messages


def _check_export() -> list[checks.CheckMessage]:
    """The dashboard's export writes only its known columns: a record model with none of them
    would have nothing to export (and must never fall back to every column)."""
    from .dashboard.config import dashboard_config
    from .dashboard.export import NothingToExport, export_columns
    from .dashboard.records import RecordSchema, manager_field_map, resolve_record_model

    try:
        model = resolve_record_model(None, dashboard_config()["RECORD_MODEL"])
    except ImproperlyConfigured:
        return []  # no dashboard record model: nothing is exported
    try:
        export_columns(RecordSchema(model, manager_field_map(model)))
    except NothingToExport as exc:
        return [
            checks.Error(
                f"The task dashboard cannot export {model._meta.label}: {exc}",
                hint="Give the record model (or its field_map) at least a task_name and status column, "
                "or subclass powercrud_async.models.AbstractAsyncTaskRecord. If the project mounts no "
                "dashboard, add 'powercrud_async.E040' to SILENCED_SYSTEM_CHECKS.",
                id=_id("E040"),
            )
        ]
    return []


def _check_htmx() -> list[checks.CheckMessage]:
    middleware = getattr(settings, "MIDDLEWARE", None) or []
    if "django_htmx.middleware.HtmxMiddleware" in middleware:
        return []
    return [
        checks.Warning(
            "django_htmx.middleware.HtmxMiddleware is not in MIDDLEWARE: HTMX requests to the "
            "progress endpoint get JSON instead of the progress-bar fragment, and the dashboard "
            "cannot refresh its regions.",
            hint="Add 'django_htmx.middleware.HtmxMiddleware' to MIDDLEWARE (and 'django_htmx' "
            "to INSTALLED_APPS).",
            id=_id("W005"),
        )
    ]


def _check_cache() -> list[checks.CheckMessage]:
    alias = conf.get("CACHE_NAME")
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        return [
            checks.Error(
                f"POWERCRUD_SETTINGS['CACHE_NAME'] is {alias!r} but CACHES has no such alias.",
                hint=f"Add CACHES[{alias!r}] or set CACHE_NAME to one of: {', '.join(caches) or 'none'}.",
                id=_id("E002"),
            )
        ]
    backend = caches[alias].get("BACKEND", "")
    if backend in PROCESS_LOCAL_CACHES:
        return [
            checks.Warning(
                f"Cache {alias!r} uses {backend.rsplit('.', 1)[-1]}, which lives inside one process: "
                "workers and web processes cannot share progress and task status through it.",
                hint="Use Redis, Memcached or django.core.cache.backends.db.DatabaseCache.",
                id=_id("W002"),
            )
        ]
    if backend == DATABASE_CACHE:
        max_entries = (caches[alias].get("OPTIONS") or {}).get("MAX_ENTRIES", 300)
        if int(max_entries) < MIN_CACHE_ENTRIES:
            return [
                checks.Warning(
                    f"Cache {alias!r} is a DatabaseCache with MAX_ENTRIES={max_entries}: once full it "
                    "culls a third of its entries, dropping the progress of running tasks.",
                    hint=f"Set CACHES[{alias!r}]['OPTIONS'] = {{'MAX_ENTRIES': 100000}} (at least "
                    f"{MIN_CACHE_ENTRIES}).",
                    id=_id("W003"),
                )
            ]
    return []


def _check_django_q() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if not apps.is_installed("django_q"):
        messages.append(
            checks.Error(
                "django_q is not in INSTALLED_APPS; jobs cannot be queued.",
                hint="Add 'django_q' to INSTALLED_APPS and run migrate.",
                id=_id("E003"),
            )
        )
    if not getattr(settings, "Q_CLUSTER", None):
        messages.append(
            checks.Error(
                "Q_CLUSTER is not configured; django-q2 does not know its broker.",
                hint="Add Q_CLUSTER = {'name': 'myproject', 'orm': 'default', 'timeout': 600, "
                "'retry': 660} (timeout below retry).",
                id=_id("E004"),
            )
        )
    return messages


def _check_manager() -> list[checks.CheckMessage]:
    default = conf.get("ASYNC_MANAGER_DEFAULT")
    if not default:
        return []
    path = default.get("manager_class")
    if not isinstance(path, str) or not path:
        return [
            checks.Error(
                "POWERCRUD_SETTINGS['ASYNC_MANAGER_DEFAULT'] has no 'manager_class' string.",
                hint='Use {"manager_class": "myapp.async_manager.AppAsyncManager", "config": {...}}.',
                id=_id("E005"),
            )
        ]
    from .async_manager import AsyncManager

    try:
        manager_class = AsyncManager.import_class(path)
    except InvalidManagerClass as exc:
        unimportable = isinstance(exc.__cause__, ImportError)
        hint = (
            "Check the dotted path; workers would fall back to the plain AsyncManager."
            if unimportable
            else "Subclass powercrud_async.async_manager.AsyncManager (or ModelTrackingAsyncManager)."
        )
        return [
            checks.Error(
                f"ASYNC_MANAGER_DEFAULT['manager_class']: {exc}",
                hint=hint,
                id=_id("E005" if unimportable else "E006"),
            )
        ]
    config = default.get("config")
    if config is not None and not isinstance(config, dict):
        return [
            checks.Error(
                f"ASYNC_MANAGER_DEFAULT['config'] must be a dict, got {type(config).__name__}.",
                hint="Remove it or give a dict of manager options.",
                id=_id("E007"),
            )
        ]
    check = getattr(manager_class, "check_configuration", None)
    return list(check(config)) if callable(check) else []


def _check_store() -> list[checks.CheckMessage]:
    if conf.get("LOCK_STORE") != "redis":
        return []
    messages: list[checks.CheckMessage] = []
    if not conf.get("REDIS_URL"):
        messages.append(
            checks.Error(
                "POWERCRUD_SETTINGS['LOCK_STORE'] is 'redis' but REDIS_URL is not set.",
                hint="Set POWERCRUD_SETTINGS['REDIS_URL'] = 'redis://127.0.0.1:6379/0'.",
                id=_id("E008"),
            )
        )
    try:
        import redis  # noqa: F401
    except ImportError:
        messages.append(
            checks.Error(
                "The 'redis' lock store needs the redis package.",
                hint="pip install 'django-powercrud-async[redis]'.",
                id=_id("E009"),
            )
        )
    return messages


def _check_sqlite() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for alias, db in getattr(settings, "DATABASES", {}).items():
        if db.get("ENGINE") != "django.db.backends.sqlite3" or str(db.get("NAME", "")) in (
            "",
            ":memory:",
        ):
            continue
        options = db.get("OPTIONS") or {}
        if options.get("transaction_mode") != "IMMEDIATE" or not options.get("timeout"):
            messages.append(
                checks.Warning(
                    f"SQLite database {alias!r} is shared by web and worker processes without "
                    "immediate transactions and a busy timeout; writers can fail with "
                    "'database is locked'.",
                    hint=f"Set DATABASES[{alias!r}]['OPTIONS'] = {{'transaction_mode': 'IMMEDIATE', "
                    "'timeout': 20, 'init_command': 'PRAGMA journal_mode=WAL;'}.",
                    id=_id("W004"),
                )
            )
    return messages
