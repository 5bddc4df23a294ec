"""Settings of the chaos soak: the production tier (PostgreSQL, Redis broker, Redis lock store,
Redis cache), every address from the environment the soak sets."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "soak",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("PCA_SOAK_PG_PORT", "5432"),
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("PCA_SOAK_CACHE_URL", "redis://127.0.0.1:6379/1"),
    }
}
STATE_URL = os.environ.get("PCA_SOAK_STATE_URL", "redis://127.0.0.1:6379/0")
Q_CLUSTER = {
    "name": "pca-soak",
    "redis": STATE_URL,
    "workers": 2,
    "queue_limit": 4,
    # A job here takes at most a few seconds (plus a pause of up to 6 s): a short timeout keeps
    # the bound after which a job popped by a killed worker counts as lost at 3 x 10 s.
    "timeout": 10,
    "retry": 15,
    "poll": 0.1,
    "catch_up": False,
    "max_attempts": 1,
    "save_limit": -1,
    "ack_failures": True,
}
POWERCRUD_SETTINGS = {
    "ASYNC_ENABLED": True,
    "LOCK_STORE": "redis",
    "REDIS_URL": STATE_URL,
    "HEARTBEAT_INTERVAL": 1,
    "PROGRESS_WRITE_INTERVAL": 0.25,
    "CONFLICT_TTL": 600,
    "STORE_RETRIES": 8,
    "ASYNC_MANAGER_DEFAULT": {"manager_class": "benchmarks.soak_jobs.SoakManager", "config": {}},
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "ERROR", "handlers": []},
}
