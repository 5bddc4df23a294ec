"""Who may see a task's progress: its launcher and staff by default; anyone holding the key of
a task launched without a user (a command, a signal)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.module_loading import import_string

from . import conf


def can_view(request: HttpRequest, owner_id: str | None, task_name: str) -> bool:
    if owner_id is None:
        return True  # launched with no user: the unguessable key is the capability
    policy = conf.get("PROGRESS_VISIBILITY")
    user: Any = getattr(request, "user", None)
    if policy not in ("owner_or_staff", "staff"):
        return bool(import_string(policy)(request, owner_id, task_name))
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    return policy == "owner_or_staff" and str(user.pk) == owner_id
