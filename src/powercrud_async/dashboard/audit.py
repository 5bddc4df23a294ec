"""The operator audit trail: who did what to which jobs, and how it went."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ..models import AuditEntry

MAX_TARGETS = 1000


def record(request: HttpRequest, action: str, targets: list[str], outcome: str, *,
           succeeded: int = 0, refused: int = 0) -> AuditEntry | None:
    """Write one entry for an authenticated operator (anonymous requests never get this far)."""
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return AuditEntry.objects.create(
        username=str(user.get_username())[:255],
        user_id=str(user.pk)[:255],
        action=action[:50],
        targets=list(targets)[:MAX_TARGETS],
        outcome=outcome,
        succeeded=succeeded,
        refused=refused,
    )
