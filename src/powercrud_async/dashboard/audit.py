"""The operator audit trail: who did what to which jobs, and how it went.

What is stored is bounded whatever a request carries: at most ``MAX_TARGETS`` keys of at most
``MAX_KEY_LENGTH`` characters, and a refusal that repeats the previous entry of the same user
within ``REPEAT_WINDOW`` (same user and action) is folded into that entry: its ``repeats`` count
goes up and its targets grow up to the same bound, so refused requests cannot fill the table or
the audit page.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from ..models import AuditEntry

MAX_TARGETS = 100
MAX_KEY_LENGTH = 255
MAX_DETAIL_LENGTH = 300
MAX_OUTCOME_LENGTH = 2000
REPEAT_WINDOW = timedelta(minutes=10)


def clip(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_targets(targets: list[str]) -> list[str]:
    kept = [clip(key, MAX_KEY_LENGTH) for key in list(targets)[:MAX_TARGETS]]
    if len(targets) > MAX_TARGETS:
        kept.append(f"… and {len(targets) - MAX_TARGETS} more")
    return kept


def bounded_results(results: list[list[str]]) -> list[list[str]]:
    return [
        [clip(key, MAX_KEY_LENGTH), clip(result, 20), clip(detail, MAX_DETAIL_LENGTH)]
        for key, result, detail in list(results)[:MAX_TARGETS]
    ]


def record(
    request: HttpRequest,
    action: str,
    targets: list[str],
    outcome: str,
    *,
    succeeded: int = 0,
    refused: int = 0,
    results: list[list[str]] | None = None,
) -> AuditEntry | None:
    """Write one entry for an authenticated operator (anonymous requests never get this far)."""
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    values = {
        "username": clip(user.get_username(), 255),
        "user_id": clip(user.pk, 255),
        "action": clip(action, 50),
        "targets": bounded_targets(targets),
        "outcome": clip(outcome, MAX_OUTCOME_LENGTH),
        "results": bounded_results(results or []),
    }
    if refused and not succeeded:
        previous = (
            AuditEntry.objects.filter(user_id=values["user_id"])
            .order_by("-created_at", "-id")
            .first()
        )
        if (
            previous is not None
            and previous.succeeded == 0
            and previous.action == values["action"]
            and previous.created_at >= timezone.now() - REPEAT_WINDOW
        ):
            merged = list(dict.fromkeys([*previous.targets, *values["targets"]]))[:MAX_TARGETS]
            repeated = f"{values['outcome']} (refused {previous.repeats + 1} times)"
            AuditEntry.objects.filter(pk=previous.pk).update(
                repeats=F("repeats") + 1,
                refused=F("refused") + refused,
                targets=merged,
                outcome=clip(repeated, MAX_OUTCOME_LENGTH),
                results=values["results"],
            )
            previous.refresh_from_db()
            return previous
    return AuditEntry.objects.create(**values, succeeded=succeeded, refused=refused)
