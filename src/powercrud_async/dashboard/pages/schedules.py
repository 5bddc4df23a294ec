"""The Schedules pages: the list of every django-q2 schedule, the bulk actions run now / pause /
resume / remove (POST only, audited), and the create and edit form."""

from __future__ import annotations

from typing import Any

from django.contrib.messages import constants as message_levels
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)

from ... import schedules
from ...exceptions import AsyncManagerError
from ...lifecycle import recurring, triggers
from .. import audit
from ..paging import link, paged
from ..responses import TEMPLATES, flash, region_or_page, report
from ..schedules import (
    ACTIONS,
    MAX_BULK,
    PER_PAGE,
    SORTS,
    STATES,
    ScheduleForm,
    annotated,
    build_rows,
    form_initial,
    state_q,
)
from .job_actions import posted_keys

SORT_LABELS = (("name", "Name"), ("trigger", "Trigger"), ("next", "Next run"), ("state", "State"))
NEW_SCHEDULE = {"schedule_type": "I", "minutes": 15, "repeats": -1}


def sort_links(base: str, query: dict[str, Any], sort: str) -> list[dict[str, str]]:
    """Each sortable header: a click sorts by it, a second click reverses (``next`` is the default)."""
    found = []
    for key, label in SORT_LABELS:
        current = sort.lstrip("-") == key
        descending = current and sort.startswith("-")
        plain = "" if key == "next" else key
        target = plain if descending else f"-{key}" if current else plain
        found.append(
            {
                "key": key,
                "label": label,
                "url": link(base, {**query, "sort": target, "page": ""}),
                "state": ("descending" if descending else "ascending") if current else "",
            }
        )
    return found


def show(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Every schedule, searchable and filtered by state and trigger type."""
    q = (request.GET.get("q") or "").strip()
    state = request.GET.get("state") or ""
    state = state if state in STATES else ""
    types = triggers.trigger_types()
    trigger = request.GET.get("trigger") or ""
    trigger = trigger if trigger in types else ""
    sort = request.GET.get("sort") or "next"
    if sort.lstrip("-") not in SORTS:
        sort = "next"
    qs = annotated()
    if q:
        qs = qs.filter(
            Q(name__icontains=q)
            | Q(func__icontains=q)
            | Q(kwargs__icontains=q)
            | Q(cron__icontains=q)
        )
    if state:
        qs = qs.filter(state_q(state))
    if trigger:
        qs = qs.filter(schedule_type=trigger)
    qs = qs.order_by(*[f"-{f}" if sort.startswith("-") else f for f in SORTS[sort.lstrip("-")]])
    filters = {k: v for k, v in (("q", q), ("state", state), ("trigger", trigger)) if v}
    query = {**filters, **({"sort": sort} if sort != "next" else {})}
    base = view.page_url("schedules")
    context = paged(qs, PER_PAGE, request.GET.get("page"), base, query)
    page = context["page_obj"]
    context.update(
        {
            "rows": build_rows(
                list(page.object_list), view.now, view.job_url, view.schedule_edit_url
            ),
            "q": q,
            "state_filter": state,
            "trigger_filter": trigger,
            "sort": sort,
            "states": STATES,
            "trigger_types": types,
            "sorts": sort_links(base, query, sort),
            "filtered": bool(filters),
            "self_url": link(base, {**query, "page": page.number if page.number > 1 else ""}),
            "schedules_url": base,
            "schedule_action_url": view.page_url("schedule-action"),
            "schedule_new_url": view.page_url("schedule-new"),
            "can_create": view.may_edit_schedules("add"),
            "can_edit": view.may_edit_schedules("change"),
            "total": context["paginator"].count,
        }
    )
    return region_or_page(
        view,
        context,
        "pca-schedules-results",
        "schedules_results.html",
        page=TEMPLATES + "schedules.html",
    )


def act(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Run one action on the posted schedules; removing asks first."""
    name = request.POST.get("action", "")
    if name not in ACTIONS:
        return HttpResponseBadRequest(
            "Unknown action. Expected one of: " + ", ".join(ACTIONS) + "."
        )
    pks = posted_keys(request, MAX_BULK)
    back = view.safe_next(view.page_url("schedules"))
    audit_name = f"schedule-{name}"
    if not view.may_act():
        audit.record(
            request,
            audit_name,
            pks,
            "Refused: no permission to act on schedules.",
            refused=len(pks),
        )
        raise PermissionDenied("You may see the task dashboard but not act on schedules.")
    if not pks:
        return respond(view, back, "Select at least one schedule first.", "warning", [])
    found = {str(s.pk): s for s in annotated().filter(pk__in=[p for p in pks if p.isdigit()])}
    if name == "remove" and request.POST.get("confirmed") != "1":
        return confirm_remove(view, pks, found, back)
    lines = []
    for pk in pks:
        schedule = found.get(pk)
        label = (schedule.name or f"Schedule {pk}") if schedule is not None else f"Schedule {pk}"
        ok, detail, job = apply(view, name, schedule)
        lines.append(
            {
                "label": label,
                "ok": ok,
                "detail": detail,
                "job_url": view.job_url(job) if job else "",
                "job": job,
            }
        )
    done = sum(1 for line in lines if line["ok"])
    refused = len(pks) - done
    summary = f"{ACTIONS[name][1]} {done} schedule{'s' if done != 1 else ''}"
    if refused:
        summary += (
            f", {refused} not: "
            + "; ".join(f"{x['label']} {x['detail']}" for x in lines if not x["ok"])[:300]
        )
    summary += "."
    targets = [f"{pk} {found[pk].name or ''}".strip() if pk in found else pk for pk in pks]
    audit.record(request, audit_name, targets, summary, succeeded=done, refused=refused)
    return respond(
        view, back, summary, "success" if not refused else ("warning" if done else "error"), lines
    )


def apply(view: Any, name: str, schedule: Any) -> tuple[bool, str, str]:
    """(done, what happened, job key) for one schedule."""
    if schedule is None:
        return False, "no such schedule", ""
    user = view.request.user
    try:
        if name == "run":
            outcome = schedules.run_schedule_now(schedule.pk, user=user)
            if outcome.outcome == schedules.BLOCKED:
                return (
                    False,
                    f"skipped: objects locked by {', '.join(outcome.holders)}",
                    outcome.task,
                )
            return True, "launched", outcome.task
        if name == "pause":
            changed = recurring.pause_schedule(schedule.pk, user=user)
            return changed, "paused" if changed else "was already paused", ""
        if name == "resume":
            changed = recurring.resume_schedule(schedule.pk)
            return changed, "resumed" if changed else "was not paused", ""
        recurring.remove_schedule(schedule.pk)
        return True, "removed", ""
    except AsyncManagerError as exc:
        return False, str(exc), ""


def confirm_remove(view: Any, pks: list[str], found: dict[str, Any], back: str) -> HttpResponse:
    named = [found[pk].name or f"Schedule {pk}" for pk in pks if pk in found][:10]
    context = {
        "pks": pks,
        "named": named,
        "more": max(0, len(pks) - 10),
        "next": back,
        "schedule_action_url": view.page_url("schedule-action"),
        "question": f"Remove {len(pks)} schedule{'s' if len(pks) != 1 else ''}?",
    }
    partial = "partials/" if getattr(view.request, "htmx", False) else ""
    return view.render(context, f"{TEMPLATES}{partial}schedules_confirm.html")


def respond(
    view: Any, back: str, summary: str, level: str, lines: list[dict[str, Any]]
) -> HttpResponse:
    context = {"summary": summary, "level": level, "schedule_lines": lines[:25], "next": back}
    flash_level = message_levels.SUCCESS if level == "success" else message_levels.WARNING
    return report(view, context, "schedules_report", back, flash_level)


def new(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return form_page(view, None)


def edit(
    view: Any, request: HttpRequest, *args: Any, schedule_id: int = 0, **kwargs: Any
) -> HttpResponse:
    schedule = annotated().filter(pk=schedule_id).first()
    if schedule is None:
        raise Http404("No such schedule.")
    return form_page(view, schedule)


def form_page(view: Any, schedule: Any) -> HttpResponse:
    """The form (400 when a POST did not save); needs django_q's add or change permission."""
    request = view.request
    perm = "add" if schedule is None else "change"
    audit_name = "schedule-create" if schedule is None else "schedule-edit"
    if not view.may_edit_schedules(perm):
        if request.method == "POST":
            audit.record(
                request,
                audit_name,
                [str(schedule.pk)] if schedule is not None else [],
                "Refused: no permission.",
                refused=1,
            )
        raise PermissionDenied(
            f"You need the django_q.{perm}_schedule permission to {perm} schedules."
        )
    plain = schedule is not None and not recurring.is_ours(schedule)
    if request.method == "POST":
        form = ScheduleForm(request.POST, plain=plain)
        saved = save(view, form, schedule) if form.is_valid() else None
        if saved is not None:
            verb = "Created" if schedule is None else "Saved"
            audit.record(
                request,
                audit_name,
                [f"{saved.pk} {saved.name}"],
                f"{verb} schedule {saved.name!r}: {triggers.describe_trigger(saved)}.",
                succeeded=1,
            )
            flash(request, message_levels.SUCCESS, f"{verb} schedule {saved.name!r}.")
            return HttpResponseRedirect(view.page_url("schedules"), status=303)
    else:
        form = ScheduleForm(
            initial=form_initial(schedule) if schedule is not None else NEW_SCHEDULE, plain=plain
        )
    context = {
        "form": form,
        "schedule": schedule,
        "plain": plain,
        "schedules_url": view.page_url("schedules"),
        "form_url": view.page_url("schedule-new")
        if schedule is None
        else view.schedule_edit_url(schedule.pk),
    }
    return view.render(
        context, TEMPLATES + "schedule_form.html", status=400 if request.method == "POST" else 200
    )


def save(view: Any, form: ScheduleForm, schedule: Any) -> Any:
    """Create or update through ``lifecycle.recurring``; its errors go next to their fields (``None``)."""
    from ...async_manager import AsyncManager

    data = form.values()
    trigger = triggers.Trigger(
        schedule_type=data["schedule_type"],
        minutes=data["minutes"],
        cron=data["cron"],
        repeats=data["repeats"],
        next_run=data.get("next_run"),
    )
    try:
        if schedule is None:
            return recurring.create_schedule(
                AsyncManager.resolve_manager(),
                data["func"],
                data["args"],
                data["kwargs"],
                name=data["name"],
                trigger=trigger,
                conflict_ids=data["conflict_ids"],
                user=view.request.user,
            )
        conflict_ids = data.get("conflict_ids") or {} if "conflict_ids" in form.fields else None
        return recurring.update_schedule(
            schedule.pk,
            name=data["name"],
            trigger=trigger,
            func=data["func"],
            args=data.get("args"),
            kwargs=data.get("kwargs"),
            conflict_ids=conflict_ids,
        )
    except (AsyncManagerError, ValueError, TypeError, LookupError) as exc:
        form.attach(exc)
        return None
