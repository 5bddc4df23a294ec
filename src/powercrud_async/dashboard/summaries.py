"""Long lists told briefly: locks as counted ranges per model, keys sorted the way people count."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts ``2`` before ``10`` (and ``book-2`` before ``book-10``)."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in _DIGITS.split(str(text))
        if part != ""
    )


def ranges(pks: Iterable[str]) -> str:
    """``["1", "2", "3", "7", "a"]`` → ``"1–3, 7, a"``: runs of consecutive integers joined."""
    ordered = sorted(dict.fromkeys(str(pk) for pk in pks), key=natural_key)
    parts: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}")
            run.clear()

    for pk in ordered:
        if pk.isdigit() and not (len(pk) > 1 and pk.startswith("0")):
            value = int(pk)
            if run and value != run[-1] + 1:
                flush()
            run.append(value)
        else:
            flush()
            parts.append(pk)
    flush()
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class LockGroup:
    model: str
    count: int
    ranges: str
    pks: list[str]


def lock_groups(pairs: Iterable[tuple[str, str]]) -> list[LockGroup]:
    """``(model_label, pk)`` pairs → one counted group per model, models and pks in natural order."""
    by_model: dict[str, list[str]] = {}
    for model, pk in pairs:
        by_model.setdefault(model, []).append(str(pk))
    return [
        LockGroup(model, len(pks), ranges(pks), sorted(pks, key=natural_key))
        for model, pks in sorted(by_model.items(), key=lambda item: natural_key(item[0]))
    ]


def describe_locks(groups: list[LockGroup]) -> str:
    """``"sample.book 1–30; sample.author 4"`` for a sentence or a confirmation."""
    return "; ".join(f"{g.model} {g.ranges}" for g in groups)
