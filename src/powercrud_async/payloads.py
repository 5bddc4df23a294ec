"""Turn what jobs take and return into values a record can hold: JSON-safe and readable.

Lifecycle payloads carry whatever a project passed to ``launch_async_task`` or its job returned:
datetimes, Decimals, UUIDs, sets, bytes, model instances, exceptions. ``json_safe`` maps each of
them to a plain JSON value a person can still read, so a ``JSONField`` (or a text column holding
JSON) never rejects an event. The ``format_*`` helpers are the defaults behind the hooks of
``ModelTrackingAsyncManager``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

from django.db.models import Model, QuerySet
from django.utils.functional import Promise

__all__ = ["default_format_objects", "default_format_user", "json_safe", "json_text"]

#: Nesting deeper than this is cut (also stops self-referencing containers).
MAX_DEPTH = 20
#: A queryset in a payload is evaluated only this far.
MAX_QUERYSET_ITEMS = 1000
CUT = "…"


def _sort_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, repr(value))


def _model(obj: Model) -> dict[str, Any]:
    return {"model": obj._meta.label_lower, "pk": json_safe(obj.pk), "str": _text(obj)}


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the event
        try:
            return repr(value)
        except Exception:  # noqa: BLE001
            return f"<unprintable {type(value).__name__}>"


def json_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` as JSON-safe data: dicts with string keys, lists, strings, numbers, bools, None.

    Datetimes become ISO 8601, Decimals and UUIDs strings, sets sorted lists, bytes text (UTF-8)
    or their ``repr``, model instances ``{"model", "pk", "str"}``, exceptions ``"Type: message"``,
    non-finite floats ``"nan"``/``"inf"``; anything else its ``str()``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum) and not isinstance(value, (str, int)):
        return json_safe(value.value, _depth)
    if isinstance(value, str):
        return str(value)  # TextChoices members and other str subclasses become plain str
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if _depth >= MAX_DEPTH:
        return CUT
    depth = _depth + 1
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (uuid.UUID, PurePath, Promise)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return repr(raw)
    if isinstance(value, Model):
        return _model(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {_text(value)}"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            safe_key = key if isinstance(key, str) else json_safe(key, depth)
            out[safe_key if isinstance(safe_key, str) else _text(safe_key)] = json_safe(item, depth)
        return out
    if isinstance(value, (set, frozenset)):
        items = [json_safe(item, depth) for item in value]
        return sorted(items, key=_sort_key)
    if isinstance(value, QuerySet):
        return [json_safe(item, depth) for item in value[:MAX_QUERYSET_ITEMS]]
    if isinstance(value, (list, tuple)):
        return [json_safe(item, depth) for item in value]
    return _text(value)


def json_text(value: Any) -> str:
    """A string for a text column: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return str(value)
    return json.dumps(json_safe(value), ensure_ascii=False, default=_text)


def default_format_user(user: Any) -> str:
    """The username (``get_username()``), ``""`` for no user or an anonymous one."""
    if user is None:
        return ""
    getter = getattr(user, "get_username", None)
    if callable(getter):
        return _text(getter() or "")
    return _text(user)


def default_format_objects(objects: Any) -> str:
    """``"a, b, c"`` for an iterable of objects, ``str()`` otherwise, ``""`` for nothing.

    A ``{"app.Model": [pks]}`` mapping (the shape of ``conflict_ids``) reads
    ``"app.Model: 1, 2; other.Model: 3"``.
    """
    if objects is None:
        return ""
    if isinstance(objects, (str, Model)):
        return _text(objects)
    if isinstance(objects, Mapping):
        parts = []
        for label, items in objects.items():
            if isinstance(items, Iterable) and not isinstance(items, (str, bytes)):
                parts.append(f"{label}: {default_format_objects(items)}")
            else:
                parts.append(f"{label}: {_text(items)}")
        return "; ".join(parts)
    if isinstance(objects, (set, frozenset)):
        return ", ".join(sorted(_text(o) for o in objects))
    if isinstance(objects, Iterable) and not isinstance(objects, (bytes, bytearray)):
        return ", ".join(_text(o) for o in objects)
    return _text(objects)
