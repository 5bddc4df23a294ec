from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from powercrud_async import checks, conf

DEFAULTS = {
    "ASYNC_ENABLED": False,
    "CACHE_NAME": "default",
    "CONFLICT_TTL": 3600,
    "PROGRESS_TTL": 7200,
    "CLEANUP_GRACE_PERIOD": 86400,
    "MAX_TASK_DURATION": 3600,
    "CLEANUP_SCHEDULE_INTERVAL": 300,
    "QCLUSTER_PROBE_TIMEOUT_MS": 300,
    "ASYNC_MANAGER_DEFAULT": None,
    "HEARTBEAT_INTERVAL": 5,
    "LOCK_STORE": "database",
    "REDIS_URL": None,
    "PROGRESS_WRITE_INTERVAL": 1.0,
}


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


@override_settings(POWERCRUD_SETTINGS={})
def test_defaults_match_powercrud() -> None:
    config = conf.get_config()
    for key, value in DEFAULTS.items():
        assert config[key] == value, key


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("CONFLICT_TTL", "3600", "int"),
        ("CONFLICT_TTL", True, "int"),
        ("ASYNC_ENABLED", "yes", "bool"),
        ("CACHE_NAME", 1, "str"),
        ("HEARTBEAT_INTERVAL", "5", "int or float"),
        ("ASYNC_MANAGER_DEFAULT", "myapp.Manager", "dict or None"),
        ("DASHBOARD", [], "dict"),
    ],
)
def test_wrong_type_names_key_value_and_type(key: str, value: Any, expected: str) -> None:
    with override_settings(POWERCRUD_SETTINGS={key: value}):
        with pytest.raises(ImproperlyConfigured) as info:
            conf.get_config()
        message = str(info.value)
        assert key in message and repr(value) in message and expected in message
        assert ids(checks.check_settings()) == ["powercrud_async.E001"]


@pytest.mark.parametrize(("key", "value"), [("LOCK_STORE", "memcached"), ("CONFLICT_TTL", -1)])
def test_bad_values(key: str, value: Any) -> None:
    with (
        override_settings(POWERCRUD_SETTINGS={key: value}),
        pytest.raises(ImproperlyConfigured, match=key),
    ):
        conf.get_config()


@override_settings(POWERCRUD_SETTINGS=["not", "a", "dict"])
def test_settings_must_be_a_dict() -> None:
    with pytest.raises(ImproperlyConfigured, match="expected dict"):
        conf.get_config()


def test_settings_reset_on_change() -> None:
    with override_settings(POWERCRUD_SETTINGS={"CONFLICT_TTL": 10}):
        assert conf.get("CONFLICT_TTL") == 10
    with override_settings(POWERCRUD_SETTINGS={"CONFLICT_TTL": 20}):
        assert conf.get("CONFLICT_TTL") == 20


def test_unknown_key_suggests_nearest() -> None:
    with override_settings(POWERCRUD_SETTINGS={"CONFLICT_TTLS": 5, "ZZZ": 1}):
        messages = checks.check_settings()
    warnings = [m for m in messages if m.id == "powercrud_async.W001"]
    assert len(warnings) == 2
    assert "'CONFLICT_TTL'" in warnings[0].hint
    assert "settings reference" in warnings[1].hint


def test_clean_configuration_has_no_messages() -> None:
    assert checks.check_settings() == []


def test_missing_cache_alias() -> None:
    with override_settings(POWERCRUD_SETTINGS={"CACHE_NAME": "progress"}):
        messages = checks.check_settings()
    assert ids(messages) == ["powercrud_async.E002"] and isinstance(messages[0], Error)
    assert "progress" in messages[0].msg and messages[0].hint


@pytest.mark.parametrize("backend", ["locmem.LocMemCache", "dummy.DummyCache"])
def test_process_local_cache(backend: str) -> None:
    caches = {"default": {"BACKEND": f"django.core.cache.backends.{backend}"}}
    with override_settings(CACHES=caches):
        messages = checks.check_settings()
    assert ids(messages) == ["powercrud_async.W002"] and isinstance(messages[0], Warning)


@pytest.mark.parametrize(
    ("options", "fires"),
    [({}, True), ({"MAX_ENTRIES": 500}, True), ({"MAX_ENTRIES": 100_000}, False)],
)
def test_database_cache_max_entries(options: dict[str, int], fires: bool) -> None:
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "t",
            "OPTIONS": options,
        }
    }
    with override_settings(CACHES=caches):
        assert ids(checks.check_settings()) == (["powercrud_async.W003"] if fires else [])


def test_django_q_not_installed() -> None:
    from django.conf import settings

    apps = [a for a in settings.INSTALLED_APPS if a != "django_q"]
    with override_settings(INSTALLED_APPS=apps):
        assert "powercrud_async.E003" in ids(checks.check_settings())


def test_q_cluster_missing() -> None:
    with override_settings(Q_CLUSTER=None):
        assert ids(checks.check_settings()) == ["powercrud_async.E004"]


@pytest.mark.parametrize(
    ("default", "code"),
    [
        ({"manager_class": "nope.Manager"}, "E005"),
        ({"config": {}}, "E005"),
        ({"manager_class": "tests.testapp.tasks.add"}, "E006"),
        ({"manager_class": "powercrud_async.async_manager.AsyncManager", "config": []}, "E007"),
    ],
)
def test_manager_default_checks(default: dict[str, Any], code: str) -> None:
    with override_settings(POWERCRUD_SETTINGS={"ASYNC_MANAGER_DEFAULT": default}):
        messages = checks.check_settings()
    assert ids(messages) == [f"powercrud_async.{code}"]
    assert messages[0].hint


def test_manager_default_ok() -> None:
    default = {"manager_class": "powercrud_async.async_manager.AsyncManager", "config": {}}
    with override_settings(POWERCRUD_SETTINGS={"ASYNC_MANAGER_DEFAULT": default}):
        assert checks.check_settings() == []


def test_redis_store_needs_url() -> None:
    with override_settings(POWERCRUD_SETTINGS={"LOCK_STORE": "redis"}):
        assert ids(checks.check_settings()) == ["powercrud_async.E008"]
    with override_settings(
        POWERCRUD_SETTINGS={"LOCK_STORE": "redis", "REDIS_URL": "redis://127.0.0.1:1/0"}
    ):
        assert checks.check_settings() == []


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_sqlite_without_immediate_transactions() -> None:
    from django.conf import settings

    db = {**settings.DATABASES["default"]}
    if db["ENGINE"] != "django.db.backends.sqlite3":  # the suite's PostgreSQL pass: never fires
        db["OPTIONS"] = {}
        with override_settings(DATABASES={"default": db}):
            assert "powercrud_async.W004" not in ids(checks.check_settings())
        return
    db["OPTIONS"] = {}
    with override_settings(DATABASES={"default": db}):
        messages = checks.check_settings()
    assert ids(messages) == ["powercrud_async.W004"] and "IMMEDIATE" in messages[0].hint


def test_checks_registered_with_django() -> None:
    from django.core.checks import run_checks

    with override_settings(POWERCRUD_SETTINGS={"CONFLICT_TTLS": 1}):
        assert "powercrud_async.W001" in ids(run_checks())


def test_htmx_middleware_missing() -> None:
    from django.conf import settings

    middleware = [m for m in settings.MIDDLEWARE if "django_htmx" not in m]
    with override_settings(MIDDLEWARE=middleware):
        messages = checks.check_settings()
    assert ids(messages) == ["powercrud_async.W005"] and "HtmxMiddleware" in messages[0].hint
