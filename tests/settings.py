"""Test settings: the embedded default (SQLite file in WAL mode, DatabaseCache, ORM broker).

A file database, not ``:memory:``, because end-to-end tests run a real ``qcluster`` process that
must see the same data; ``PCA_TEST_DB`` carries its path to those processes. ``PCA_DB=postgres``
runs the suite on a PostgreSQL server that ``tests.services`` starts on loopback.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

SECRET_KEY = "powercrud-async-tests"  # noqa: S105
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_q",
    "neapolitan",
    "powercrud_async",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"
LOGIN_URL = "/admin/login/"

if "PCA_TEST_DB" not in os.environ:
    os.environ["PCA_TEST_DB"] = os.path.join(tempfile.mkdtemp(prefix="pca-tests-"), "test.sqlite3")
TEST_DB = os.environ["PCA_TEST_DB"]

if os.environ.get("PCA_DB") == "postgres":
    from tests.services import postgres_settings

    DATABASES = {"default": postgres_settings()}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # Inside qcluster subprocesses NAME is the test database itself.
            "NAME": TEST_DB,
            "TEST": {"NAME": TEST_DB},
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "powercrud_async_cache",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
}

Q_CLUSTER = {
    "name": "pca-tests",
    "orm": "default",
    "workers": int(os.environ.get("PCA_Q_WORKERS", "2")),
    "timeout": int(os.environ.get("PCA_Q_TIMEOUT", "30")),
    "retry": int(os.environ.get("PCA_Q_RETRY", "40")),
    "poll": 0.1,
    # 30 makes the scheduler run as soon as the cluster starts (its loop adds this up to 30).
    "guard_cycle": float(os.environ.get("PCA_Q_GUARD_CYCLE", "0.5")),
    "catch_up": False,
    "max_attempts": 3,
    "save_limit": 0,
}

if os.environ.get("PCA_BROKER_REDIS"):
    # django-q2's Redis broker (the production tier): jobs are popped into the cluster's memory.
    del Q_CLUSTER["orm"]
    Q_CLUSTER["redis"] = os.environ["PCA_BROKER_REDIS"]
    Q_CLUSTER["queue_limit"] = int(os.environ.get("PCA_Q_LIMIT", "4"))

POWERCRUD_SETTINGS: dict[str, Any] = {
    "ASYNC_ENABLED": True,
    "HEARTBEAT_INTERVAL": float(os.environ.get("PCA_HEARTBEAT", "5")),
    "PROGRESS_WRITE_INTERVAL": 1.0,
    "RECORD_WRITE_DELAY": float(os.environ.get("PCA_RECORD_WRITE_DELAY", "0.1")),
}

if os.environ.get("PCA_REDIS_URL"):
    # The production tier: Redis for the cache, the lock store and django-q2's broker.
    _REDIS_URL = os.environ["PCA_REDIS_URL"]
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _REDIS_URL,
        }
    }
    POWERCRUD_SETTINGS.update(LOCK_STORE="redis", REDIS_URL=_REDIS_URL)
    Q_CLUSTER.pop("orm", None)
    Q_CLUSTER["redis"] = _REDIS_URL

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
