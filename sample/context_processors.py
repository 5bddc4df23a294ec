"""Links every sample page needs (the dashboard may or may not be installed)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def links(request: HttpRequest) -> dict[str, Any]:
    from .views import dashboard_url

    return {"sample_dashboard_url": dashboard_url() or "/sample/async-dashboard/"}
