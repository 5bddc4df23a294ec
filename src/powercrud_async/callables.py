"""Turning ``func`` into a dotted path a worker can import, and packing arguments for retry."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import pickle
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from .exceptions import InvalidTaskFunction, TamperedPayload

#: Prefix of a signed call blob: version tag, then a SHA-256 HMAC, then the pickle.
SIGNED_PREFIX = b"pca1:"
SIGNATURE_SALT = "powercrud_async.callables.call"
DIGEST_SIZE = hashlib.sha256().digest_size


def resolve_func(func: Any) -> tuple[str, Callable[..., Any]]:
    """``(dotted path, callable)`` for a callable or a dotted path; raises before anything happens."""
    if isinstance(func, str):
        if "." not in func:
            raise InvalidTaskFunction(
                f"func {func!r} is not a dotted path like 'myapp.tasks.rebuild_project'."
            )
        try:
            target = import_string(func)
        except ImportError as exc:
            raise InvalidTaskFunction(f"func {func!r} cannot be imported: {exc}") from exc
        if not callable(target):
            raise InvalidTaskFunction(f"func {func!r} is not callable.")
        return func, target
    if not callable(func):
        raise InvalidTaskFunction(
            f"func must be a callable or a dotted path string, got {type(func).__name__}."
        )
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise InvalidTaskFunction(
            f"func {func!r} must be a module-level function (workers import it by its dotted path); "
            "lambdas, nested functions and functions defined in __main__ cannot be found there."
        )
    path = f"{module}.{qualname}"
    try:
        found = import_string(path)
    except ImportError as exc:
        raise InvalidTaskFunction(f"func {func!r} cannot be found again at {path!r}.") from exc
    if (
        getattr(found, "__wrapped__", found) is not getattr(func, "__wrapped__", func)
        and found is not func
    ):
        raise InvalidTaskFunction(f"{path!r} does not name the function that was passed as func.")
    return path, func


def accepted_kwargs(func: Callable[..., Any], names: Sequence[str]) -> set[str]:
    """Which of ``names`` ``func`` accepts as keyword arguments (all of them with ``**kwargs``)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set(names)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return set(names)
    keywordable = {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return {n for n in names if n in keywordable}


def _signature(data: bytes, secret: str | bytes) -> bytes:
    return salted_hmac(SIGNATURE_SALT, data, secret=secret, algorithm="sha256").digest()


def sign_blob(data: bytes) -> bytes:
    """``data`` behind an HMAC keyed from ``SECRET_KEY``, so storage alone cannot forge a pickle."""
    return SIGNED_PREFIX + _signature(data, settings.SECRET_KEY) + data


def verify_blob(blob: bytes) -> bytes:
    """The data inside a signed blob; ``TamperedPayload`` unless ``SECRET_KEY`` or one of
    ``SECRET_KEY_FALLBACKS`` signed it (fallbacks let a key rotation keep old jobs retryable)."""
    blob = bytes(blob)
    head = len(SIGNED_PREFIX)
    if not blob.startswith(SIGNED_PREFIX) or len(blob) < head + DIGEST_SIZE:
        raise TamperedPayload("The stored job payload is not signed; it was not unpickled.")
    signature, data = blob[head : head + DIGEST_SIZE], blob[head + DIGEST_SIZE :]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if any(hmac.compare_digest(signature, _signature(data, secret)) for secret in secrets):
        return data
    raise TamperedPayload(
        "The stored job payload failed its signature check (changed in storage, or signed with a "
        "SECRET_KEY that is neither the current key nor in SECRET_KEY_FALLBACKS); it was not unpickled."
    )


def dumps_call(args: Sequence[Any], kwargs: dict[str, Any]) -> bytes | None:
    """Pickle and sign a job's arguments for retry; ``None`` when they cannot be pickled."""
    try:
        data = pickle.dumps((tuple(args), dict(kwargs)))
    except Exception:  # noqa: BLE001 - anything unpicklable only disables retry
        return None
    return sign_blob(data)


def loads_call(blob: bytes | None) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """Inverse of ``dumps_call``: the signature is checked before anything is unpickled."""
    if not blob:
        return None
    args, kwargs = pickle.loads(verify_blob(blob))  # noqa: S301 - signed by our SECRET_KEY
    return tuple(args), dict(kwargs)
