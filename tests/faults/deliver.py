"""Run one delivery of a job in a process of its own, as another django-q2 worker would:
``python -m tests.faults.deliver ENVELOPE_PICKLE`` (store chosen by ``PCA_STORE``/``PCA_REDIS_URL``)."""

from __future__ import annotations

import os
import pickle
import sys

import django


def main(path: str) -> None:
    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings

    if os.environ.get("PCA_STORE") == "redis":
        override_settings(
            POWERCRUD_SETTINGS={
                **settings.POWERCRUD_SETTINGS,
                "LOCK_STORE": "redis",
                "REDIS_URL": os.environ["PCA_REDIS_URL"],
            }
        ).enable()
    from powercrud_async import runner

    with open(path, "rb") as fh:
        envelope = pickle.load(fh)
    print(repr(runner.run_task(envelope)))


if __name__ == "__main__":
    main(sys.argv[1])
