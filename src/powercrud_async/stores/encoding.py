"""How the Redis store writes registry rows and locks as strings: each ``TaskInfo`` field as
JSON text (``call`` as base64, datetimes as ISO 8601), a lock as ``"expires_ms|acquired_ms|owner"``
under the field ``"label:pk"``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from ..conflicts import LockKey
from .base import LockInfo, TaskInfo
from .lua import encode_status

INFO_FIELDS = [f.name for f in fields(TaskInfo)]
DATETIME_FIELDS = frozenset({"created_at", "started_at", "heartbeat_at", "finished_at"})


def text(value: bytes | str) -> str:
    """Responses are bytes unless the caller's client decodes them."""
    return value.decode() if isinstance(value, bytes) else value


def field(key: LockKey) -> str:
    # Model labels never contain ':', so the first ':' separates label from pk.
    return f"{key[0]}:{key[1]}"


def key(field: bytes | str) -> LockKey:
    label, _, pk = text(field).partition(":")
    return label, pk


def ms_to_datetime(ms: str | int) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=dt_timezone.utc)


def parse_lock(field: bytes | str, value: bytes | str) -> LockInfo:
    expires, acquired, owner = text(value).split("|", 2)
    label, pk = key(field)
    return LockInfo(
        model_label=label,
        object_pk=pk,
        task_name=owner,
        acquired_at=ms_to_datetime(acquired),
        expires_at=ms_to_datetime(expires),
    )


def encode(name: str, value: Any) -> str:
    """One TaskInfo field as JSON text; datetimes as ISO 8601, ``call`` bytes as base64."""
    if value is None:
        return "null"
    if name in DATETIME_FIELDS:
        return json.dumps(value.isoformat())
    if name == "call":
        return json.dumps(base64.b64encode(bytes(value)).decode("ascii"))
    if name == "status":
        return encode_status(value)
    return json.dumps(value, separators=(",", ":"))


def decode(name: str, text: str) -> Any:
    value = json.loads(text)
    if value is None:
        return None
    if name in DATETIME_FIELDS:
        return datetime.fromisoformat(value)
    if name == "call":
        return base64.b64decode(value)
    return value


def timestamp(value: datetime | None) -> str:
    return "" if value is None else repr(value.timestamp())


def to_info(row: dict[Any, Any] | list[Any]) -> TaskInfo:
    if isinstance(row, list):  # HGETALL from a script: a flat field, value list
        row = dict(zip(row[::2], row[1::2], strict=True))
    values: dict[str, Any] = {}
    for raw_name, raw_value in row.items():
        name = text(raw_name)
        if name in INFO_FIELDS:
            values[name] = decode(name, text(raw_value))
    if values.get("conflict_ids") is None:
        values["conflict_ids"] = {}
    return TaskInfo(**values)


def flatten(pairs: Iterable[tuple[str, str]]) -> list[str]:
    return [item for pair in pairs for item in pair]
