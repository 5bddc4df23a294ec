"""The audit trail page: who did what to which jobs or schedules, filterable, newest first."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from ...models import AuditEntry
from .. import actions
from ..paging import paged
from ..records import Moment, job_titles

PER_PAGE = 50
SHOWN_TARGETS = 6


def show(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Every audit entry this viewer may see (their own unless they see everything)."""
    user = (request.GET.get("user") or "").strip()
    action = (request.GET.get("action") or "").strip()
    target = (request.GET.get("target") or "").strip()
    qs = AuditEntry.objects.all()
    if not view.sees_everything:
        qs = qs.filter(user_id=str(request.user.pk))
    if user:
        qs = qs.filter(username__icontains=user)
    if action:
        qs = qs.filter(action=action)
    if target:
        qs = qs.filter(targets__icontains=target)
    query = {k: v for k, v in (("user", user), ("action", action), ("target", target)) if v}
    context = paged(
        qs.order_by("-created_at", "-id"),
        PER_PAGE,
        request.GET.get("page"),
        view.page_url("audit"),
        query,
    )
    shown = context["page_obj"].object_list
    titles = job_titles(
        view.schema,
        view.get_queryset(),  # schedule actions target schedules
        {
            str(t)
            for entry in shown
            if not entry.action.startswith("schedule-")
            for t in (entry.targets or [])[:SHOWN_TARGETS]
        },
    )
    entries = []
    for entry in shown:
        targets = [str(t) for t in (entry.targets or [])]
        entries.append(
            {
                "entry": entry,
                "time": Moment.of(entry.created_at, view.now),
                "targets": [
                    {
                        "key": t,
                        "url": view.audit_target_url(entry.action, t),
                        "title": titles.get(t, ""),
                    }
                    for t in targets[:SHOWN_TARGETS]
                ],
                "more": max(0, len(targets) - SHOWN_TARGETS),
                "label": actions.ACTIONS[entry.action].label
                if entry.action in actions.ACTIONS
                else entry.action,
            }
        )
    context.update(
        {
            "entries": entries,
            "user_filter": user,
            "action_filter": action,
            "target_filter": target,
            "action_choices": [(a.name, a.label) for a in actions.ACTIONS.values()],
            "filtered": bool(query),
        }
    )
    return view.render(context)
