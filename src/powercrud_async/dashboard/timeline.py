"""The detail page's timeline: events in the order they happened, progress folded into one line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from .records import Moment, short, status_of

#: Where each event falls among events stamped with the same moment.
LIFECYCLE_ORDER = {
    "create": 0,
    "start": 1,
    "progress": 2,
    "complete": 3,
    "fail": 3,
    "cancel": 3,
    "cleanup": 4,
}
_PERCENT = re.compile(r"\((\d+(?:\.\d+)?)%\)\s*$")


def ordered(events: Sequence[Any]) -> list[Any]:
    """By time, then by lifecycle step, then by insertion (a launcher's ``create`` may be stored
    after the worker's ``start``)."""
    return sorted(events, key=lambda e: (e.created_at, LIFECYCLE_ORDER.get(e.event, 5), e.id or 0))


def entry(event: Any, now: datetime) -> dict[str, Any]:
    return {
        "event": event.event,
        "status": status_of(event.status) if event.status else None,
        "message": short(event.message, 300),
        "time": Moment.of(event.created_at, now),
    }


def build(events: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    """Timeline entries; all ``progress`` events become one entry (at the first one's place)
    holding the individual steps for an expandable list."""
    entries: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for event in ordered(events):
        if event.event != "progress":
            entries.append(entry(event, now))
            continue
        if not steps:
            entries.append({"event": "progress", "group": True, "steps": steps})
        steps.append(entry(event, now))
    if steps:
        group = next(e for e in entries if e.get("group"))
        group.update(
            count=len(steps),
            first=steps[0],
            last=steps[-1],
            time=steps[-1]["time"],
            status=None,
            message=steps[-1]["message"],
        )
    return entries


def last_percent(events: Sequence[Any]) -> float | None:
    """The percent the last progress event reported ("… (33.9%)"), for a job that stopped early."""
    for event in reversed(ordered(events)):
        if event.event == "progress":
            found = _PERCENT.search(event.message or "")
            if found:
                return float(found.group(1))
    return None


def clock_time(when: datetime) -> str:
    """``14:03:12.345`` in the current time zone: log lines seconds apart must read apart."""
    local = timezone.localtime(when) if timezone.is_aware(when) else when
    return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
