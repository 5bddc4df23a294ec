"""A callable access rule for the tests (``POWERCRUD_SETTINGS["DASHBOARD"]["VIEW_ACCESS"]``)."""

from __future__ import annotations

from typing import Any


def only_ops(request: Any) -> bool:
    return bool(request.user.is_authenticated and request.user.get_username() == "ops")
