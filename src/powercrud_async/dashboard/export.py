"""Which record columns the export writes, and the rows it writes (arguments masked) as CSV or JSON.

Only the listed logical columns the record model has are exported: a model with none of them is
a configuration error (system check ``powercrud_async.E040``), never a dump of every column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..redaction import redact
from .records import RecordSchema

EXPORT_FIELDS = tuple(
    "task_name status user_label func_path message percent created_at updated_at started_at "
    "completed_at failed_at cancelled_at duration retry_of cleaned_up affected_objects "
    "label".split()
)
#: Logical columns whose values go through ``redact`` when a project exports them.
REDACTED = frozenset({"args_payload", "kwargs_payload"})


class NothingToExport(Exception):
    """The record model has none of the export columns."""


def export_columns(
    schema: RecordSchema, fields: Sequence[str] = EXPORT_FIELDS
) -> list[tuple[str, str]]:
    """``(logical name, model field)`` for each export column the model has."""
    found = [(logical, schema[logical]) for logical in fields if schema[logical]]
    columns = [(logical, str(name)) for logical, name in found]
    if not columns:
        raise NothingToExport(
            f"{schema.model._meta.label} has none of the export columns ({', '.join(fields)})."
        )
    return columns


def masked_rows(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[list[Any]]:
    """Each row with the values of argument columns redacted."""
    masked = [i for i, name in enumerate(headers) if name in REDACTED]
    for row in rows:
        values = list(row)
        for i in masked:
            values[i] = redact(values[i])
        yield values


def cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would evaluate as a formula is quoted."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text  # keep spreadsheets from evaluating it
    return text


class Echo:
    """A file that hands back what is written, so ``csv.writer`` can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_rows(headers: list[str], rows: Any) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield "\ufeff" + writer.writerow(headers)
    for row in masked_rows(headers, rows.iterator(chunk_size=2000)):
        yield writer.writerow([cell(v) for v in row])


def json_rows(headers: list[str], rows: Any) -> Iterator[str]:
    yield "["
    first = True
    for row in masked_rows(headers, rows.iterator(chunk_size=2000)):
        item = {
            h: (v.isoformat() if hasattr(v, "isoformat") else v)
            for h, v in zip(headers, row, strict=True)
        }
        yield ("" if first else ",") + "\n" + json.dumps(item, default=str, ensure_ascii=False)
        first = False
    yield "\n]\n"
