"""Links every sample page needs (the dashboard may or may not be installed)."""

from __future__ import annotations

import os
import shlex
import sys
from functools import cache
from pathlib import Path
from typing import Any

from django.http import HttpRequest


def links(request: HttpRequest) -> dict[str, Any]:
    from .views import dashboard_url

    return {
        "sample_dashboard_url": dashboard_url() or "/sample/async-dashboard/",
        "manage_py": manage_py(),
    }


@cache
def manage_py() -> str:
    """The command prefix that works from the project folder: this server's own interpreter (the
    virtualenv's, which has Django), relative when it lives inside the project."""
    root = Path(__file__).resolve().parent.parent
    python = Path(sys.executable)
    try:
        shown = os.path.relpath(python, root) if python.is_relative_to(root) else str(python)
    except ValueError:  # another drive on Windows
        shown = str(python)
    return f"{shlex.quote(shown)} manage.py"
