"""Item: re-adding a lock you hold renews it, so nobody can take it as expired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from powercrud_async.stores import TaskStore

pytestmark = pytest.mark.django_db(transaction=True)

KEY = ("testapp.project", "1")


def test_reentrant_acquire_renews_expiry(store: TaskStore) -> None:
    assert store.acquire("mine", [KEY], 0) == {}  # expired at once
    assert store.acquire("mine", [KEY], 600) == {}  # re-added by its holder: renewed
    (lock,) = store.locks()
    assert lock.expires_at > timezone.now() + timedelta(seconds=300)
    assert store.acquire("other", [KEY], 600) == {KEY: "mine"}
    assert store.holders([KEY]) == {KEY: "mine"}
