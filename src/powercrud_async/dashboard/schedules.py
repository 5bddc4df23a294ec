"""The Schedules pages: every django-q2 ``Schedule`` (ours and plain ones), their last runs, and the
operator actions run now / pause / resume / remove, single and bulk, plus create and edit.

``SchedulePages`` is mixed into the dashboard view; its handlers are named in the view's
``page_handlers`` so access checks, namespaces and rendering are the dashboard's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.utils import timezone
from django_htmx.http import push_url, trigger_client_event

from .. import schedules
from ..exceptions import AsyncManagerError, InvalidConflictIds, InvalidTaskFunction, UnknownModel
from ..lifecycle import recurring, triggers
from ..statuses import TaskStatus
from ..stores import get_store
from . import audit
from .records import Moment, status_of

__all__ = ["ScheduleForm", "SchedulePages", "schedule_summary"]

PER_PAGE = 50
MAX_BULK = 500
STATES = {"active": "Active", "paused": "Paused", "finished": "Finished"}
SORTS = {"name": ("name", "pk"), "next": ("next_run", "pk"), "trigger": ("schedule_type", "minutes", "cron", "pk"),
         "state": ("state_rank", "next_run", "pk")}
ACTIONS = {
    "run": ("Run now", "Ran"), "pause": ("Pause", "Paused"), "resume": ("Resume", "Resumed"),
    "remove": ("Remove", "Removed"),
}


@dataclass(slots=True)
class LastRun:
    label: str
    status: str  # a TaskStatus value, for the badge colour
    detail: str = ""
    url: str = ""
    when: Moment | None = None


@dataclass(slots=True)
class ScheduleRow:
    pk: int
    name: str
    func: str
    ours: bool
    trigger: str
    trigger_code: str
    state: str
    next_run: Moment
    repeats: str
    last: LastRun | None
    edit_url: str = ""

    @property
    def state_label(self) -> str:
        return STATES[self.state]


def _model() -> Any:
    from django_q.models import Schedule

    return Schedule


def annotated() -> QuerySet[Any]:
    return _model().objects.select_related("powercrud_state").annotate(state_rank=Case(
        When(powercrud_state__paused_at__isnull=False, then=Value(1)),
        When(repeats=0, then=Value(2)),
        default=Value(0), output_field=IntegerField(),
    ))


def state_q(state: str) -> Q:
    paused = Q(powercrud_state__paused_at__isnull=False)
    return {"paused": paused, "finished": Q(repeats=0) & ~paused, "active": ~Q(repeats=0)}[state]


def state_of(schedule: Any) -> str:
    if recurring.is_paused(schedule):
        return "paused"
    return "finished" if schedule.repeats == 0 else "active"


def repeats_text(schedule: Any, state: str) -> str:
    repeats = schedule.powercrud_state.saved_repeats if state == "paused" else schedule.repeats
    if repeats is None or repeats < 0:
        return "forever"
    return f"{repeats} left" if repeats else "none left"


def last_runs(schedules: list[Any], now: datetime, job_url: Callable[[str], str]) -> dict[int, LastRun]:
    """The last run of each schedule in two queries: our job (registry) or django-q2's task."""
    from django_q.models import Task

    ours: dict[int, Any] = {}
    for s in schedules:
        state = getattr(s, "powercrud_state", None)
        if state is not None and state.last_outcome:
            ours[s.pk] = state
    infos = get_store().get_many([st.last_task for st in ours.values() if st.last_task])
    q_ids = [s.task for s in schedules if s.task and (s.pk not in ours or not recurring.is_ours(s))]
    q_tasks = {t["id"]: t for t in Task.objects.filter(id__in=q_ids).values("id", "success", "stopped", "result")}
    found: dict[int, LastRun] = {}
    for s in schedules:
        state = ours.get(s.pk)
        q_task = q_tasks.get(s.task) if s.task else None
        if state is not None and (q_task is None or recurring.is_ours(s) or
                                  (state.last_run_at and state.last_run_at >= q_task["stopped"])):
            found[s.pk] = _our_last(state, infos.get(state.last_task), now, job_url)
        elif q_task is not None:
            ok = bool(q_task["success"])
            found[s.pk] = LastRun("Succeeded" if ok else "Failed", TaskStatus.SUCCESS if ok else TaskStatus.FAILED,
                                  "" if ok else str(q_task["result"] or "")[:200],
                                  when=Moment.of(q_task["stopped"], now))
    return found


def _our_last(state: Any, info: Any, now: datetime, job_url: Callable[[str], str]) -> LastRun:
    url = job_url(state.last_task) if state.last_task else ""
    when = Moment.of(state.last_run_at, now)
    if state.last_outcome == schedules.BLOCKED:
        why = state.last_message.partition("skipped: ")[2] or state.last_message
        return LastRun("Skipped", TaskStatus.CANCELLED, why, url, when)
    if state.last_outcome == schedules.ERROR:
        return LastRun("Not launched", TaskStatus.FAILED, state.last_message, "", when)
    status = status_of(info.status) if info is not None else TaskStatus.UNKNOWN
    label = str(status.label) if info is not None else "Launched"
    detail = info.reason if info is not None and status == TaskStatus.FAILED else ""
    return LastRun(label, status.value, detail, url, when)


def build_rows(schedules: list[Any], now: datetime, job_url: Callable[[str], str],
               edit_url: Callable[[int], str]) -> list[ScheduleRow]:
    lasts = last_runs(schedules, now, job_url)
    rows = []
    for s in schedules:
        state = state_of(s)
        ours = recurring.is_ours(s)
        try:
            func = recurring.spec_of(s)["func"] if ours else s.func
        except AsyncManagerError:
            func = s.func
        rows.append(ScheduleRow(
            pk=s.pk, name=s.name or f"Schedule {s.pk}", func=str(func), ours=ours,
            trigger=triggers.describe_trigger(s), trigger_code=s.schedule_type, state=state,
            next_run=Moment.of(s.next_run if state == "active" else None, now),
            repeats=repeats_text(s, state), last=lasts.get(s.pk), edit_url=edit_url(s.pk),
        ))
    return rows


def failed_last(row: ScheduleRow) -> bool:
    return bool(row.last and row.last.status in (TaskStatus.FAILED, TaskStatus.CANCELLED))


@dataclass(slots=True)
class Summary:
    clusters: int
    total: int
    paused: int
    upcoming: list[ScheduleRow]
    failing: list[ScheduleRow]


def schedule_summary(healthy_clusters: int, now: datetime, job_url: Callable[[str], str],
                     edit_url: Callable[[int], str]) -> Summary:
    """For the overview: is anything running the scheduler, the next 5 runs, failing schedules."""
    qs = annotated()
    upcoming = list(qs.filter(state_q("active")).order_by("next_run", "pk")[:5])
    recent = list(qs.filter(Q(powercrud_state__last_outcome__gt="") | Q(task__isnull=False))
                  .order_by("-powercrud_state__last_run_at", "-pk")[:200])
    failing = [r for r in build_rows(recent, now, job_url, edit_url) if failed_last(r)][:5]
    return Summary(
        clusters=healthy_clusters, total=qs.count(), paused=qs.filter(state_q("paused")).count(),
        upcoming=build_rows(upcoming, now, job_url, edit_url), failing=failing,
    )


# -- the form ---------------------------------------------------------------------------------------
class ScheduleForm(forms.Form):
    """Create or edit a schedule; every check is ``lifecycle.recurring``'s, shown next to its field."""

    name = forms.CharField(max_length=recurring.NAME_MAX_LENGTH)
    func = forms.CharField(label="Function", max_length=256, help_text="Dotted path, e.g. myapp.tasks.rebuild")
    schedule_type = forms.ChoiceField(label="Trigger", choices=())
    minutes = forms.IntegerField(required=False, help_text="For “Minutes”: run every this many minutes.")
    cron = forms.CharField(required=False, max_length=100, help_text="For “Cron”: e.g. 0 3 * * * (03:00 every day).")
    repeats = forms.IntegerField(initial=-1, help_text="-1 runs forever; otherwise the number of runs left.")
    next_run = forms.DateTimeField(required=False, help_text="In the project's time zone; empty: now (cron: from the expression).",
                                   widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    args = forms.CharField(required=False, label="Arguments", help_text='JSON list, e.g. [42, "full"]')
    kwargs = forms.CharField(required=False, label="Keyword arguments", help_text='JSON object, e.g. {"dry_run": false}')
    conflict_ids = forms.CharField(required=False, label="Conflict ids",
                                   help_text='JSON object, e.g. {"myapp.Project": [1, 2]}: runs lock these objects.')

    FIELD_ERRORS = (("minutes", "minutes"), ("cron", "cron"), ("schedule_type", "schedule_type"),
                    ("repeats", "repeats"), ("next_run", "next_run"), ("kwargs", "kwargs"), ("args", "args"),
                    ("name", "name"))

    def __init__(self, *args: Any, plain: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        choice: Any = self.fields["schedule_type"]
        choice.choices = list(triggers.trigger_types().items())
        if plain:  # a plain django-q2 schedule keeps its own arguments
            for name in ("args", "kwargs", "conflict_ids"):
                del self.fields[name]

    def _json(self, name: str, kind: type, default: Any) -> Any:
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return default
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from exc
        if not isinstance(value, kind):
            raise forms.ValidationError(f"Expected a JSON {'list' if kind is list else 'object'}.")
        return value

    def clean_args(self) -> Any:
        return self._json("args", list, [])

    def clean_kwargs(self) -> Any:
        return self._json("kwargs", dict, {})

    def clean_conflict_ids(self) -> Any:
        return self._json("conflict_ids", dict, None)

    def values(self) -> dict[str, Any]:
        """Cleaned data with the fields of the other trigger types dropped (the form shows them all)."""
        data = dict(self.cleaned_data)
        kind = data.get("schedule_type")
        if kind != "I":
            data["minutes"] = None
        data["cron"] = (data.get("cron") or "").strip() or None if kind == "C" else None
        return data

    def attach(self, exc: Exception) -> None:
        """Put a schedule error next to the field it is about."""
        message = str(exc)
        lowered = message.lower()
        by_type = {InvalidTaskFunction: "func", InvalidConflictIds: "conflict_ids", UnknownModel: "conflict_ids"}
        for kind, field in by_type.items():
            if isinstance(exc, kind) and field in self.fields:
                self.add_error(field, message)
                return
        for word, field in self.FIELD_ERRORS:
            if word in lowered and field in self.fields:
                self.add_error(field, message)
                return
        self.add_error(None, message)


def form_initial(schedule: Any) -> dict[str, Any]:
    """The form's values; a paused schedule shows what resuming will restore."""
    state = schedule.powercrud_state if recurring.is_paused(schedule) else None
    repeats = state.saved_repeats if state is not None else schedule.repeats
    next_run = state.saved_next_run if state is not None else schedule.next_run
    initial: dict[str, Any] = {
        "name": schedule.name, "schedule_type": schedule.schedule_type, "minutes": schedule.minutes,
        "cron": schedule.cron or "", "repeats": repeats, "func": schedule.func,
        "next_run": timezone.localtime(next_run) if next_run else None,
    }
    if recurring.is_ours(schedule):
        spec = recurring.spec_of(schedule)
        initial.update(func=spec["func"], args=json.dumps(spec.get("args") or []),
                       kwargs=json.dumps(spec.get("kwargs") or {}),
                       conflict_ids=json.dumps(spec["conflict_ids"]) if spec.get("conflict_ids") else "")
    return initial


# -- the handlers -----------------------------------------------------------------------------------
class SchedulePages:
    """Handlers for the Schedules pages (mixed into ``TaskDashboardMixin``)."""

    request: HttpRequest
    now: datetime
    page_url: Callable[..., str]
    job_url: Callable[[str], str]
    render: Callable[..., HttpResponse]
    htmx_target: Callable[[], str]
    polled: Callable[[str], bool]
    safe_next: Callable[[str], str]

    def schedule_edit_url(self, pk: int) -> str:
        return self.page_url("schedule-edit", schedule_id=pk)

    def audit_target_url(self, action: str, target: str) -> str:
        """Audit targets of schedule actions are "<id> <name>": link to the schedule, not a job."""
        if action.startswith("schedule-"):
            name = target.partition(" ")[2] or target
            return self.page_url("schedules") + "?" + urlencode({"q": name})
        return self.job_url(target)

    def may_act(self) -> bool:
        """The dashboard's ``ACTION_ACCESS`` rule (``can_act`` on the view)."""
        return bool(getattr(self, "can_act", False))

    def may_edit_schedules(self, perm: str) -> bool:
        user = getattr(self.request, "user", None)
        return bool(self.may_act() and user is not None and user.has_perm(f"django_q.{perm}_schedule"))

    def schedules(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        q = (request.GET.get("q") or "").strip()
        state = request.GET.get("state") or ""
        state = state if state in STATES else ""
        trigger = request.GET.get("trigger") or ""
        types = triggers.trigger_types()
        trigger = trigger if trigger in types else ""
        sort = request.GET.get("sort") or "next"
        if sort.lstrip("-") not in SORTS:
            sort = "next"
        qs = annotated()
        if q:
            qs = qs.filter(Q(name__icontains=q) | Q(func__icontains=q) | Q(kwargs__icontains=q) | Q(cron__icontains=q))
        if state:
            qs = qs.filter(state_q(state))
        if trigger:
            qs = qs.filter(schedule_type=trigger)
        fields = SORTS[sort.lstrip("-")]
        qs = qs.order_by(*[f"-{f}" if sort.startswith("-") else f for f in fields])
        paginator = Paginator(qs, PER_PAGE)
        page = paginator.get_page(request.GET.get("page") or 1)
        rows = build_rows(list(page.object_list), self.now, self.job_url, self.schedule_edit_url)
        query = {k: v for k, v in (("q", q), ("state", state), ("trigger", trigger)) if v}
        base = self.page_url("schedules")

        def url(**changes: Any) -> str:
            merged = {**query, **({"sort": sort} if sort != "next" else {}), **changes}
            merged = {k: v for k, v in merged.items() if v not in ("", None)}
            return base + ("?" + urlencode(merged) if merged else "")

        sorts = []
        for key, label in (("name", "Name"), ("trigger", "Trigger"), ("next", "Next run"), ("state", "State")):
            current = sort.lstrip("-") == key
            descending = current and sort.startswith("-")
            sorts.append({"key": key, "label": label,
                          "url": url(sort=("" if key == "next" else key) if descending else f"-{key}" if current else ("" if key == "next" else key), page=""),
                          "state": ("descending" if descending else "ascending") if current else ""})
        context: dict[str, Any] = {
            "rows": rows, "page_obj": page, "paginator": paginator, "q": q, "state_filter": state,
            "trigger_filter": trigger, "sort": sort, "states": STATES, "trigger_types": types,
            "sorts": sorts, "filtered": bool(query), "self_url": url(page=page.number if page.number > 1 else ""),
            "schedules_url": base, "schedule_action_url": self.page_url("schedule-action"),
            "schedule_new_url": self.page_url("schedule-new"),
            "can_create": self.may_edit_schedules("add"), "can_edit": self.may_edit_schedules("change"),
            "prev_url": url(page=page.number - 1) if page.has_previous() else "",
            "next_url": url(page=page.number + 1) if page.has_next() else "",
            "total": paginator.count,
        }
        if self.htmx_target() == "pca-schedules-results":
            response = self.render(context, "powercrud_async/dashboard/partials/schedules_results.html")
            if not self.polled("pca-schedules-results"):
                push_url(response, str(context["self_url"]))
            return response
        return self.render(context, "powercrud_async/dashboard/schedules.html")

    # -- actions ---------------------------------------------------------------------------------
    def schedule_action(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        name = request.POST.get("action", "")
        if name not in ACTIONS:
            return HttpResponseBadRequest("Unknown action. Expected one of: " + ", ".join(ACTIONS) + ".")
        pks = list(dict.fromkeys(k.strip() for k in request.POST.getlist("tasks") if k.strip()))[:MAX_BULK]
        back = self.safe_next(self.page_url("schedules"))
        audit_name = f"schedule-{name}"
        if not self.may_act():
            audit.record(request, audit_name, pks, "Refused: no permission to act on schedules.", refused=len(pks))
            raise PermissionDenied("You may see the task dashboard but not act on schedules.")
        if not pks:
            return self.schedule_report(back, "Select at least one schedule first.", "warning", [])
        found = {str(s.pk): s for s in annotated().filter(pk__in=[p for p in pks if p.isdigit()])}
        if name == "remove" and request.POST.get("confirmed") != "1":
            return self.confirm_remove(pks, found, back)
        lines = []
        done = 0
        for pk in pks:
            schedule = found.get(pk)
            label = (schedule.name or f"Schedule {pk}") if schedule is not None else f"Schedule {pk}"
            ok, detail, job = self.apply_schedule_action(name, schedule)
            done += ok
            lines.append({"label": label, "ok": ok, "detail": detail,
                          "job_url": self.job_url(job) if job else "", "job": job})
        verb = ACTIONS[name][1]
        refused = len(pks) - done
        summary = f"{verb} {done} schedule{'s' if done != 1 else ''}"
        if refused:
            summary += f", {refused} not: " + "; ".join(f"{x['label']} {x['detail']}" for x in lines if not x["ok"])[:300]
        summary += "."
        targets = [f"{pk} {found[pk].name or ''}".strip() if pk in found else pk for pk in pks]
        audit.record(request, audit_name, targets, summary, succeeded=done, refused=refused)
        level = "success" if not refused else ("warning" if done else "error")
        return self.schedule_report(back, summary, level, lines)

    def apply_schedule_action(self, name: str, schedule: Any) -> tuple[bool, str, str]:
        """(done, what happened, job key) for one schedule."""
        if schedule is None:
            return False, "no such schedule", ""
        try:
            if name == "run":
                outcome = schedules.run_schedule_now(schedule.pk, user=self.request.user)
                if outcome.outcome == schedules.BLOCKED:
                    return False, f"skipped: objects locked by {', '.join(outcome.holders)}", outcome.task
                return True, "launched", outcome.task
            if name == "pause":
                changed = recurring.pause_schedule(schedule.pk, user=self.request.user)
                return changed, "paused" if changed else "was already paused", ""
            if name == "resume":
                changed = recurring.resume_schedule(schedule.pk)
                return changed, "resumed" if changed else "was not paused", ""
            recurring.remove_schedule(schedule.pk)
            return True, "removed", ""
        except AsyncManagerError as exc:
            return False, str(exc), ""

    def confirm_remove(self, pks: list[str], found: dict[str, Any], back: str) -> HttpResponse:
        named = [found[pk].name or f"Schedule {pk}" for pk in pks if pk in found][:10]
        context = {"pks": pks, "named": named, "more": max(0, len(pks) - 10), "next": back,
                   "schedule_action_url": self.page_url("schedule-action"),
                   "question": f"Remove {len(pks)} schedule{'s' if len(pks) != 1 else ''}?"}
        return self.render(context, "powercrud_async/dashboard/partials/schedules_confirm.html"
                           if getattr(self.request, "htmx", False) else "powercrud_async/dashboard/schedules_confirm.html")

    def schedule_report(self, back: str, summary: str, level: str, lines: list[dict[str, Any]]) -> HttpResponse:
        context = {"summary": summary, "level": level, "schedule_lines": lines[:25], "next": back}
        if getattr(self.request, "htmx", False):
            response = self.render(context, "powercrud_async/dashboard/partials/schedules_report.html")
            trigger_client_event(response, "pca-refresh")
            return response
        from django.contrib import messages

        if hasattr(self.request, "_messages"):
            messages.add_message(self.request, messages.SUCCESS if level == "success" else messages.WARNING, summary)
            return HttpResponseRedirect(back, status=303)
        return self.render(context, "powercrud_async/dashboard/schedules_report.html")

    # -- create and edit ---------------------------------------------------------------------------
    def schedule_new(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.schedule_form_page(None)

    def schedule_edit(self, request: HttpRequest, *args: Any, schedule_id: int = 0, **kwargs: Any) -> HttpResponse:
        schedule = annotated().filter(pk=schedule_id).first()
        if schedule is None:
            from django.http import Http404

            raise Http404("No such schedule.")
        return self.schedule_form_page(schedule)

    def schedule_form_page(self, schedule: Any) -> HttpResponse:
        perm = "add" if schedule is None else "change"
        if not self.may_edit_schedules(perm):
            if self.request.method == "POST":
                audit.record(self.request, f"schedule-{'create' if schedule is None else 'edit'}",
                             [str(schedule.pk)] if schedule is not None else [], "Refused: no permission.", refused=1)
            raise PermissionDenied(f"You need the django_q.{perm}_schedule permission to {perm} schedules.")
        plain = schedule is not None and not recurring.is_ours(schedule)
        if self.request.method == "POST":
            form = ScheduleForm(self.request.POST, plain=plain)
            if form.is_valid():
                saved = self.save_schedule_form(form, schedule)
                if saved is not None:
                    verb = "Created" if schedule is None else "Saved"
                    audit.record(self.request, "schedule-create" if schedule is None else "schedule-edit",
                                 [f"{saved.pk} {saved.name}"], f"{verb} schedule {saved.name!r}: "
                                 f"{triggers.describe_trigger(saved)}.", succeeded=1)
                    from django.contrib import messages

                    if hasattr(self.request, "_messages"):
                        messages.success(self.request, f"{verb} schedule {saved.name!r}.")
                    return HttpResponseRedirect(self.page_url("schedules"), status=303)
        else:
            form = ScheduleForm(initial=form_initial(schedule) if schedule is not None else {"schedule_type": "I", "minutes": 15, "repeats": -1},
                                plain=plain)
        context = {"form": form, "schedule": schedule, "plain": plain,
                   "schedules_url": self.page_url("schedules"),
                   "form_url": self.page_url("schedule-new") if schedule is None else self.schedule_edit_url(schedule.pk)}
        return self.render(context, "powercrud_async/dashboard/schedule_form.html",
                           status=400 if self.request.method == "POST" else 200)

    def save_schedule_form(self, form: ScheduleForm, schedule: Any) -> Any:
        from ..async_manager import AsyncManager

        data = form.values()
        next_run = data.get("next_run")
        try:
            if schedule is None:
                return AsyncManager.resolve_manager().schedule_async_task(
                    data["func"], *data["args"], name=data["name"], schedule_type=data["schedule_type"],
                    minutes=data["minutes"], cron=data["cron"], repeats=data["repeats"], next_run=next_run,
                    conflict_ids=data["conflict_ids"], user=self.request.user, **data["kwargs"],
                )
            return recurring.update_schedule(
                schedule.pk, name=data["name"], schedule_type=data["schedule_type"], minutes=data["minutes"],
                cron=data["cron"], repeats=data["repeats"], next_run=next_run, func=data["func"],
                args=data.get("args"), kwargs=data.get("kwargs"),
                conflict_ids=(data.get("conflict_ids") or {}) if "conflict_ids" in form.fields else None,
            )
        except (AsyncManagerError, ValueError, TypeError, LookupError) as exc:
            form.attach(exc)
            return None
