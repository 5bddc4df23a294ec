"""Locks reserved by name with ``add_conflict_ids``, remembered for the launch they were made for.

Seed 002's basic pattern reserves under a fixed name, then launches with the same ids; the launch
adopts those locks instead of conflicting with itself. Only a launch in the same thread or asyncio
task (the same ``contextvars`` context) sees the reservation, so an unrelated launch in another
request of the same process never takes over locks it did not reserve. Each request starts with
no reservations, because WSGI servers reuse threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from django.core.signals import request_started
from django.dispatch import receiver

from ..conflicts import LockKey

Reserved = Mapping[str, frozenset[LockKey]]

# Never mutated in place: a copied context (a new asyncio task) shares the mapping it started
# with, so every change sets a new one and stays in the context that made it.
_reserved: ContextVar[Reserved] = ContextVar(
    "powercrud_async_reservations", default=MappingProxyType({})
)


def remember(task_name: str, keys: Iterable[LockKey]) -> None:
    current = dict(_reserved.get())
    current[task_name] = current.get(task_name, frozenset()) | frozenset(keys)
    _reserved.set(MappingProxyType(current))


def reserved(task_name: str) -> frozenset[LockKey]:
    """The keys this context reserved under ``task_name``."""
    return _reserved.get().get(task_name, frozenset())


def holders_of(keys: Iterable[LockKey]) -> set[str]:
    """Names whose reservations, made in this context, overlap ``keys``."""
    wanted = set(keys)
    return {name for name, held in _reserved.get().items() if held & wanted}


def forget(names: Iterable[str], keys: Iterable[LockKey] | None = None) -> None:
    """Drop ``keys`` (or everything) from this context's reservations of ``names``."""
    drop = frozenset(keys) if keys is not None else None
    current = dict(_reserved.get())
    for name in names:
        held = current.get(name)
        if held is None:
            continue
        left = held - drop if drop is not None else frozenset()
        if left:
            current[name] = left
        else:
            del current[name]
    _reserved.set(MappingProxyType(current))


def clear() -> None:
    """Forget every reservation of this context (the locks themselves stay until released)."""
    _reserved.set(MappingProxyType({}))


@receiver(request_started, dispatch_uid="powercrud_async.lifecycle.reservations.clear")
def _new_request(**kwargs: Any) -> None:
    clear()
