"""Creating rows with one written-out INSERT instead of ``save()`` where that is all
``save()`` would do: a launch creates two or three rows inside the transaction that holds
SQLite's write lock, and building them through the ORM took longer than running them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connections, models
from django.db.models import signals


@cache
def _plain_table(model: type[models.Model]) -> bool:
    """Whether the model's ``save()`` is Django's own, on one table with no database-side
    defaults or generated columns."""
    meta = model._meta
    return (
        model.save is models.Model.save
        and model.save_base is models.Model.save_base
        and not meta.parents
        and not meta.proxy
        and not any(f.has_db_default() or f.generated for f in meta.concrete_fields)
    )


def saves_by_insert(model: type[models.Model]) -> bool:
    """Whether creating a ``model`` row through ``save()`` would only run its INSERT (no
    override, no ``pre_save``/``post_save`` receivers), so ``insert_objects`` may write it."""
    return _plain_table(model) and not (
        signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model)
    )


#: A statement built ahead of the transaction that runs it: ``(sql, params)``.
Statement = tuple[str, list[Any]]


def execute(using: str, statement: Statement) -> int:
    """Run a prepared statement on ``using``; returns its row count."""
    with connections[using].cursor() as cursor:
        cursor.execute(*statement)
        return int(cursor.rowcount)


def insert_objects(objects: Sequence[models.Model], using: str) -> None:
    """One INSERT for ``objects`` (all of one model), written out: the ORM spent longer
    building ``save()`` or ``bulk_create()`` than the database took to run it. No signals:
    callers check ``saves_by_insert``."""
    execute(using, insert_statement(objects, using))


def insert_statement(objects: Sequence[models.Model], using: str) -> Statement:
    """The INSERT ``insert_objects`` runs, built now so that it can run later inside a short
    transaction. Field defaults and ``pre_save`` (``auto_now``) apply as in ``save()``, at the
    time of building; an auto primary key nobody set is left to the database."""
    model = type(objects[0])
    meta = model._meta
    conn = connections[using]
    qn = conn.ops.quote_name
    auto = meta.auto_field
    if auto is not None and any(getattr(obj, auto.attname) is None for obj in objects):
        if any(getattr(obj, auto.attname) is not None for obj in objects):
            raise ValueError("insert_objects: give every object its primary key, or none.")
        fields = [f for f in meta.concrete_fields if f is not auto]
    else:
        fields = list(meta.concrete_fields)
    row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        f.get_db_prep_save(f.pre_save(obj, True), connection=conn)
        for obj in objects
        for f in fields
    ]
    statement = (
        f"INSERT INTO {qn(meta.db_table)} "
        f"({', '.join(qn(f.column or f.attname) for f in fields)}) "
        f"VALUES {', '.join([row_marks] * len(objects))}"
    )
    return statement, params


def create(obj: models.Model, using: str) -> None:
    """Create ``obj``'s row: one written-out INSERT if that is all ``save()`` would do, else
    ``save(force_insert=True)`` so overrides and signal receivers run."""
    if saves_by_insert(type(obj)):
        insert_objects([obj], using)
    else:
        obj.save(force_insert=True, using=using)
