"""Masking sensitive job arguments wherever they are shown or exported.

A keyword argument (at any depth of a dict) whose name contains one of
``POWERCRUD_SETTINGS["REDACT_ARGUMENTS"]`` (case-insensitive) has its value replaced by ``MASK``.
Positional arguments have no name, so they are never masked: pass secrets by keyword.
"""

from __future__ import annotations

import json
from typing import Any

from . import conf

MASK = "********"


def patterns() -> tuple[str, ...]:
    return tuple(str(p).lower() for p in conf.get("REDACT_ARGUMENTS") if str(p))


def is_sensitive(name: Any, found: tuple[str, ...] | None = None) -> bool:
    lowered = str(name).lower()
    return any(p in lowered for p in (patterns() if found is None else found))


def redact(value: Any) -> Any:
    """``value`` with every sensitive keyword's value masked; JSON text is masked inside too."""
    found = patterns()
    if not found:
        return value
    return _redact(value, found)


def _redact(value: Any, found: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: MASK if is_sensitive(k, found) else _redact(v, found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, found) for v in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return json.dumps(_redact(parsed, found), ensure_ascii=False)
    return value


def for_record(value: Any) -> Any:
    """What a lifecycle record keeps of the arguments: masked unless the project opted in."""
    return value if conf.get("KEEP_SENSITIVE_ARGUMENTS") else redact(value)
