"""Settings for the sample's own tests: ``pytest tests/sample --ds=sample.test_settings``.

The sample's wiring (apps, URLs, manager, templates) on the embedded default, always: a fresh
SQLite file (not ``:memory:``: the browser test runs a real ``qcluster`` that must share it, and
``PCA_SAMPLE_TEST_DB`` carries its path to that process), whatever ``DATABASE_URL``/``REDIS_URL``
say in the environment.
"""

from __future__ import annotations

import os
import tempfile

from sample.settings import *  # noqa: F403
from sample.settings import POWERCRUD_SETTINGS, Q_CLUSTER

if "PCA_SAMPLE_TEST_DB" not in os.environ:
    os.environ["PCA_SAMPLE_TEST_DB"] = os.path.join(
        tempfile.mkdtemp(prefix="pca-sample-tests-"), "sample.sqlite3"
    )
SAMPLE_TEST_DB = os.environ["PCA_SAMPLE_TEST_DB"]

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "sample-tests"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SAMPLE_TEST_DB,  # inside the qcluster subprocess: the test database itself
        "TEST": {"NAME": SAMPLE_TEST_DB},
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
        "LOCATION": "sample_cache",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
}
POWERCRUD_SETTINGS = {
    **{k: v for k, v in POWERCRUD_SETTINGS.items() if k not in ("LOCK_STORE", "REDIS_URL")},
    "HEARTBEAT_INTERVAL": 1,
    "PROGRESS_WRITE_INTERVAL": 0.2,
}
Q_CLUSTER = {
    **{k: v for k, v in Q_CLUSTER.items() if k != "redis"},
    "name": "sample-tests",
    "orm": "default",
    "poll": 0.1,
    "workers": 2,
    "timeout": 60,
    "retry": 90,
}
SAMPLE_WORK_DELAY = float(os.environ.get("SAMPLE_WORK_DELAY", "0"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": []},
}
