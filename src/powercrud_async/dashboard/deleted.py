"""A deleted job answers 404 with who deleted it and when, and offers no action on it."""

from __future__ import annotations

from typing import Any

from ..models import AuditEntry


def deletion_of(key: str) -> Any:
    """The audit entry that deleted ``key``'s record, newest first, or ``None``."""
    candidates = AuditEntry.objects.filter(
        action="delete", succeeded__gt=0, targets__icontains=key
    ).order_by("-created_at", "-id")[:20]
    return next((entry for entry in candidates if key in (entry.targets or [])), None)
