"""Settings for the sample project.

Embedded default (nothing to install): SQLite in WAL mode with immediate transactions and a busy
timeout, a shared ``DatabaseCache`` with room for many entries, and django-q2's ORM broker, so
``runserver`` and one ``qcluster`` share everything through one file.

Production tier, switched on by environment variables:

* ``DATABASE_URL=postgres://user:password@host:5432/name`` → PostgreSQL.
* ``REDIS_URL=redis://host:6379/0`` → Redis cache, Redis lock store and django-q2's Redis broker.

Other variables: ``DJANGO_DEBUG`` (default on), ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS``
(comma-separated), ``DJANGO_STATIC_ROOT``, ``SAMPLE_DB_PATH`` (the SQLite file), ``SAMPLE_WORK_DELAY`` (seconds of
artificial work per chapter), ``Q_WORKERS``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sample.env import check_redis_url, database_from_url, flag

BASE_DIR = Path(__file__).resolve().parent

DEBUG = flag(os.environ.get("DJANGO_DEBUG"), True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "sample-only-insecure-key-change-me"  # noqa: S105
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "sample.urls"
WSGI_APPLICATION = "sample.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "sample",  # first, so its base.html and list templates win
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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
                "sample.context_processors.links",
            ]
        },
    }
]

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None  # only for collectstatic
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# -- database ---------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SAMPLE_DB_PATH") or str(BASE_DIR / "db.sqlite3"),
            "OPTIONS": {
                # Writers queue for the lock instead of failing with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# -- cache, locks, broker -------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
Q_WORKERS = int(os.environ.get("Q_WORKERS", "2"))

POWERCRUD_SETTINGS: dict[str, object] = {
    "ASYNC_ENABLED": True,
    "ASYNC_MANAGER_DEFAULT": {"manager_class": "sample.async_manager.SampleAsyncManager"},
    "HEARTBEAT_INTERVAL": 2,
    "PROGRESS_WRITE_INTERVAL": 0.5,
    "CLEANUP_GRACE_PERIOD": 3600,
    "CLEANUP_SCHEDULE_INTERVAL": 60,  # demo_setup creates the django-q2 Schedule
}

Q_CLUSTER: dict[str, object] = {
    "name": "sample",
    "workers": Q_WORKERS,
    "timeout": 600,  # below retry, so a slow job is never handed to a second worker
    "retry": 660,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 500,
    "label": "Django Q2",
}

if REDIS_URL:
    check_redis_url(REDIS_URL)
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    POWERCRUD_SETTINGS["LOCK_STORE"] = "redis"
    POWERCRUD_SETTINGS["REDIS_URL"] = REDIS_URL
    Q_CLUSTER["redis"] = REDIS_URL
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "sample_cache",
            # The default (300) culls a third of the entries once full: progress would vanish.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.2

#: Seconds of artificial work per chapter, so progress bars have something to show.
SAMPLE_WORK_DELAY = float(os.environ.get("SAMPLE_WORK_DELAY", "0.4"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "powercrud_async": {"handlers": ["console"], "level": "INFO"},
        "sample": {"handlers": ["console"], "level": "INFO"},
    },
}
