"""Safe, visible background jobs for Django on django-q2.

Public names live in their modules (``powercrud_async.async_manager`` and friends); nothing is
imported here because this package is loaded from ``INSTALLED_APPS`` before models are ready.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("django-powercrud-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
