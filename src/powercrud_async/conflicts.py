"""Validation and normalisation of ``conflict_ids`` into canonical lock keys.

``"myapp.Project"``, ``"myapp.project"`` and the model class name one lock; pks go through the
model's pk field so ``1`` and ``"1"`` are one lock and UUID pks have one spelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models

from .exceptions import InvalidConflictIds, InvalidConflictIdsType, UnknownModel

#: Column widths of ``TaskLock``: what a lock key must fit in every database and store.
LABEL_MAX_LENGTH = 100
PK_MAX_LENGTH = 255
NAME_MAX_LENGTH = 255  # task names and lock owners (django-q2 keys are shorter still)

LockKey = tuple[str, str]
"""``(model label in lower case, pk as canonical string)``."""

Normalized = dict[str, frozenset[str]]


def text_problem(text: str, max_length: int) -> str | None:
    """Why ``text`` cannot be stored alike in SQLite, PostgreSQL and Redis, or ``None``.

    PostgreSQL refuses NUL characters and over-long values that SQLite keeps, and no database
    can encode a lone surrogate, so these are refused up front, the same way everywhere.
    """
    if len(text) > max_length:
        return f"is longer than {max_length} characters"
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    return None


def impossible_name(name: str) -> bool:
    """True for a task name no registry row or lock can have: looking it up is answered "not
    found" without asking a database that would refuse it (PostgreSQL and NUL, say)."""
    return text_problem(name, NAME_MAX_LENGTH) is not None


def resolve_model(label: Any) -> type[models.Model]:
    """The installed model a label (or model class/instance) names."""
    if isinstance(label, type) and issubclass(label, models.Model):
        return label
    if isinstance(label, models.Model):
        return type(label)
    if not isinstance(label, str):
        raise InvalidConflictIdsType(
            f"conflict_ids keys must be 'app_label.Model' strings or model classes, got {label!r} "
            f"({type(label).__name__})."
        )
    app_label, dot, model_name = label.partition(".")
    if not dot or not app_label or not model_name or "." in model_name:
        raise InvalidConflictIds(
            f"conflict_ids key {label!r} is not of the form 'app_label.Model' (e.g. 'myapp.Project')."
        )
    try:
        return apps.get_model(app_label, model_name)
    except LookupError as exc:
        raise UnknownModel(
            f"conflict_ids key {label!r} names no installed model; check the app label and model "
            f"name (e.g. 'myapp.Project')."
        ) from exc


def lock_label(model: type[models.Model]) -> str:
    """The label a model's rows are locked under: a proxy shares its concrete model's rows."""
    label = model._meta.concrete_model._meta.label_lower  # type: ignore[union-attr]
    problem = text_problem(label, LABEL_MAX_LENGTH)
    if problem:
        raise InvalidConflictIds(f"Model label {label!r} {problem}; it cannot be locked.")
    return label


def normalize_label(label: Any) -> str:
    """``myapp.project`` for any way of naming the model (or a proxy of it)."""
    return lock_label(resolve_model(label))


def normalize_pk(model: type[models.Model], pk: Any) -> str:
    """One canonical string for a pk value of ``model``."""
    if isinstance(pk, models.Model):
        pk = pk.pk
    if pk is None or isinstance(pk, (bool, list, dict, set, tuple, bytes)):
        raise InvalidConflictIdsType(
            f"{model._meta.label} pk {pk!r} ({type(pk).__name__}) is not a valid primary key value."
        )
    field = model._meta.pk
    assert field is not None
    try:
        value = str(field.to_python(pk))
    except (ValidationError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidConflictIds(
            f"{model._meta.label} pk {pk!r} is not a valid value for its {type(field).__name__}."
        ) from exc
    problem = text_problem(value, PK_MAX_LENGTH)
    if problem:
        raise InvalidConflictIds(
            f"{model._meta.label} pk {value[:20]!r} {problem}; it cannot be locked."
        )
    return value


def _pairs(conflict_ids: Any) -> Iterator[tuple[LockKey, Any]]:
    """``((label, canonical pk), pk as given)`` for every id, validating as it goes."""
    if conflict_ids is None:
        return
    if not isinstance(conflict_ids, Mapping):
        raise InvalidConflictIdsType(
            "conflict_ids must be a mapping like {'myapp.Project': {1, 2}}, got "
            f"{type(conflict_ids).__name__}."
        )
    for label, ids in conflict_ids.items():
        model = resolve_model(label)
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise InvalidConflictIdsType(
                f"conflict_ids[{label!r}] must be an iterable of pks (a set or list), got "
                f"{type(ids).__name__} {ids!r}."
            )
        locked_as = lock_label(model)
        for pk in ids:
            yield (locked_as, normalize_pk(model, pk)), pk


def normalize_conflict_ids(conflict_ids: Any) -> Normalized:
    """Validate ``{"app_label.Model": {pk, ...}}`` and return it in canonical form.

    Raises a subclass of ``ValueError``/``TypeError``/``LookupError`` naming what is wrong.
    """
    result: dict[str, set[str]] = {}
    for (label, pk), _ in _pairs(conflict_ids):
        result.setdefault(label, set()).add(pk)
    return {label: frozenset(pks) for label, pks in result.items()}


def originals_by_key(conflict_ids: Any) -> dict[LockKey, list[Any]]:
    """Each lock key with the pk values the caller spelled it as (``1`` and ``"1"`` share one),
    so an answer can be given back in the caller's own values. Validates like
    ``normalize_conflict_ids``, all before the caller touches a store."""
    given: dict[LockKey, list[Any]] = {}
    for key, pk in _pairs(conflict_ids):
        given.setdefault(key, []).append(pk)
    return given


def to_keys(normalized: Mapping[str, Iterable[str]]) -> list[LockKey]:
    """Lock keys in canonical (sorted) order, so concurrent acquirers never deadlock."""
    return sorted((label, pk) for label, pks in normalized.items() for pk in pks)


def to_json(normalized: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    return {label: sorted(pks) for label, pks in sorted(normalized.items())}
