"""The actions endpoint: cancel, retry, release, delete … on selected jobs (POST only), with a
confirmation for destructive ones, an audit entry for every attempt and a report of each outcome."""

from __future__ import annotations

from typing import Any

from django.contrib.messages import constants as message_levels
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django_htmx.http import HttpResponseClientRedirect

from ...lifecycle.submit import TASK_KEY_MAX_LENGTH
from .. import actions, audit
from ..lock_release import release_confirmation
from ..records import title_of
from ..responses import TEMPLATES, flash, report
from .jobs import MAX_BULK, matching_keys

LEVELS = {
    "success": message_levels.SUCCESS,
    "warning": message_levels.WARNING,
    "error": message_levels.ERROR,
}
SHOWN_LINES = 25


def posted_keys(request: HttpRequest, max_bulk: int = MAX_BULK) -> list[str]:
    """The ``tasks`` posted, stripped, de-duplicated and capped (shared with schedule actions)."""
    return list(dict.fromkeys(k.strip() for k in request.POST.getlist("tasks") if k.strip()))[
        :max_bulk
    ]


def visible_records(view: Any, keys: list[str]) -> dict[str, Any]:
    """The records of ``keys`` this viewer may see, by key."""
    key_field = view.schema["task_name"]
    if not key_field:
        return {}
    return {
        str(getattr(obj, key_field)): obj
        for obj in view.get_queryset().filter(**{f"{key_field}__in": keys})
    }


def perform(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Run one action on the posted jobs; a job the viewer may not see is "no such job"."""
    name = request.POST.get("action", "")
    action = actions.ACTIONS.get(name)
    if action is None:
        return HttpResponseBadRequest(
            "Unknown action. Expected one of: " + ", ".join(actions.ACTIONS) + "."
        )
    posted = posted_keys(request)
    if request.POST.get("matching") is not None and request.POST.get("confirmed") != "1":
        posted = matching_keys(view, request.POST["matching"])
    too_long = [k for k in posted if len(k) > TASK_KEY_MAX_LENGTH]  # cannot be task keys
    keys = [k for k in posted if k not in too_long]
    back = view.safe_next(view.page_url("list"))
    if not view.can_act:
        audit.record(
            request, name, posted, "Refused: no permission to act on jobs.", refused=len(posted)
        )
        raise PermissionDenied("You may see the task dashboard but not act on jobs.")
    if not keys:
        return respond(view, None, back, "Select at least one job first.", "warning")
    records = visible_records(view, keys)
    hidden = [] if view.sees_everything else [k for k in keys if k not in records]
    keys = [k for k in keys if k not in hidden]
    if action.destructive and request.POST.get("confirmed") != "1" and keys:
        return confirm(view, action, keys, records, back)
    try:
        done = actions.run(name, keys, records, view.schema, request.user)
    except Exception as exc:
        audit.record(request, name, keys, f"Failed: {type(exc).__name__}: {exc}", refused=len(keys))
        raise
    for key in hidden + too_long:
        done.outcomes.append(actions.Outcome(key, actions.REFUSED, "no such job"))
    audit.record(
        request,
        name,
        done.targets,
        done.summary,
        succeeded=done.succeeded,
        refused=done.refused + done.errors,
        results=done.results,
    )
    return respond(view, done, back, done.summary, done.level)


def confirm(
    view: Any, action: actions.Action, keys: list[str], records: dict[str, Any], back: str
) -> HttpResponse:
    """Ask before a destructive action, naming the first ten jobs."""
    named = []
    for key in keys[:10]:
        record = records.get(key)
        func = str(view.schema.value(record, "func_path", "") or "") if record is not None else ""
        label = str(view.schema.value(record, "label", "") or "") if record is not None else ""
        named.append({"key": key, "name": title_of(label, func), "url": view.job_url(key)})
    context = {
        "confirm_action": action,
        "keys": keys,
        "named": named,
        "more": max(0, len(keys) - 10),
        "next": back,
        "follow": view.request.POST.get("follow", ""),
        "question": action.ask(len(keys)),
        "confirm_label": action.confirm_label(len(keys)),
    }
    if action.name == "release":
        context.update(release_confirmation(keys, named))
    partial = "partials/" if getattr(view.request, "htmx", False) else ""
    return view.render(context, f"{TEMPLATES}{partial}confirm.html")


def respond(
    view: Any, done: actions.Report | None, back: str, summary: str, level: str
) -> HttpResponse:
    """The report of each outcome; an htmx form that asked to ``follow`` goes back with a message."""
    lines = []
    for outcome in done.outcomes[:SHOWN_LINES] if done is not None else []:
        lines.append(
            {
                "key": outcome.key,
                "url": view.job_url(outcome.key),
                "result": outcome.result,
                "detail": outcome.detail,
                "new_key": outcome.new_key,
                "new_url": view.job_url(outcome.new_key) if outcome.new_key else "",
            }
        )
    context = {
        "report": done,
        "summary": summary,
        "level": level,
        "lines": lines,
        "more_lines": max(0, len(done.outcomes) - SHOWN_LINES) if done else 0,
        "next": back,
    }
    follow = getattr(view.request, "htmx", False) and view.request.POST.get("follow") == "1"
    if follow and flash(view.request, LEVELS[level], summary):
        return HttpResponseClientRedirect(back)
    return report(view, context, "report", back, LEVELS[level])
