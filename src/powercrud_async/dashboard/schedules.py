"""What the Schedules pages show: every django-q2 ``Schedule`` (ours and plain ones) as a row with
its last run, the overview's summary, and the create/edit form. The handlers are in
``pages.schedules``; ``SchedulePages`` gives the dashboard view the schedule URLs and permissions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.utils import timezone

from .. import broker, schedules
from ..exceptions import AsyncManagerError, InvalidConflictIds, InvalidTaskFunction, UnknownModel
from ..lifecycle import recurring, triggers
from ..statuses import TaskStatus
from ..stores import get_store
from .records import Moment, status_of

__all__ = ["ScheduleForm", "SchedulePages", "schedule_summary"]

PER_PAGE = 50
MAX_BULK = 500
STATES = {"active": "Active", "paused": "Paused", "finished": "Finished"}
SORTS = {
    "name": ("name", "pk"),
    "next": ("next_run", "pk"),
    "trigger": ("schedule_type", "minutes", "cron", "pk"),
    "state": ("state_rank", "next_run", "pk"),
}
ACTIONS = {
    "run": ("Run now", "Ran"),
    "pause": ("Pause", "Paused"),
    "resume": ("Resume", "Resumed"),
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
    return broker.schedule_model()


def annotated() -> QuerySet[Any]:
    return (
        _model()
        .objects.select_related("powercrud_state")
        .annotate(
            state_rank=Case(
                When(powercrud_state__paused_at__isnull=False, then=Value(1)),
                When(repeats=0, then=Value(2)),
                default=Value(0),
                output_field=IntegerField(),
            )
        )
    )


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


def last_runs(
    schedules: list[Any], now: datetime, job_url: Callable[[str], str]
) -> dict[int, LastRun]:
    """The last run of each schedule in two queries: our job (registry) or django-q2's task."""
    Task = broker.task_model()
    ours: dict[int, Any] = {}
    for s in schedules:
        state = getattr(s, "powercrud_state", None)
        if state is not None and state.last_outcome:
            ours[s.pk] = state
    infos = get_store().get_many([st.last_task for st in ours.values() if st.last_task])
    q_ids = [s.task for s in schedules if s.task and (s.pk not in ours or not recurring.is_ours(s))]
    q_tasks = {
        t["id"]: t
        for t in Task.objects.filter(id__in=q_ids).values("id", "success", "stopped", "result")
    }
    found: dict[int, LastRun] = {}
    for s in schedules:
        state = ours.get(s.pk)
        q_task = q_tasks.get(s.task) if s.task else None
        if state is not None and (
            q_task is None
            or recurring.is_ours(s)
            or (state.last_run_at and state.last_run_at >= q_task["stopped"])
        ):
            found[s.pk] = _our_last(state, infos.get(state.last_task), now, job_url)
        elif q_task is not None:
            ok = bool(q_task["success"])
            found[s.pk] = LastRun(
                "Succeeded" if ok else "Failed",
                TaskStatus.SUCCESS if ok else TaskStatus.FAILED,
                "" if ok else str(q_task["result"] or "")[:200],
                when=Moment.of(q_task["stopped"], now),
            )
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


def build_rows(
    schedules: list[Any],
    now: datetime,
    job_url: Callable[[str], str],
    edit_url: Callable[[int], str],
) -> list[ScheduleRow]:
    lasts = last_runs(schedules, now, job_url)
    rows = []
    for s in schedules:
        state = state_of(s)
        ours = recurring.is_ours(s)
        try:
            func = recurring.spec_of(s)["func"] if ours else s.func
        except AsyncManagerError:
            func = s.func
        rows.append(
            ScheduleRow(
                pk=s.pk,
                name=s.name or f"Schedule {s.pk}",
                func=str(func),
                ours=ours,
                trigger=triggers.describe_trigger(s),
                trigger_code=s.schedule_type,
                state=state,
                next_run=Moment.of(s.next_run if state == "active" else None, now),
                repeats=repeats_text(s, state),
                last=lasts.get(s.pk),
                edit_url=edit_url(s.pk),
            )
        )
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


def schedule_summary(
    healthy_clusters: int,
    now: datetime,
    job_url: Callable[[str], str],
    edit_url: Callable[[int], str],
) -> Summary:
    """For the overview: is anything running the scheduler, the next 5 runs, failing schedules."""
    qs = annotated()
    upcoming = list(qs.filter(state_q("active")).order_by("next_run", "pk")[:5])
    recent = list(
        qs.filter(Q(powercrud_state__last_outcome__gt="") | Q(task__isnull=False)).order_by(
            "-powercrud_state__last_run_at", "-pk"
        )[:200]
    )
    failing = [r for r in build_rows(recent, now, job_url, edit_url) if failed_last(r)][:5]
    return Summary(
        clusters=healthy_clusters,
        total=qs.count(),
        paused=qs.filter(state_q("paused")).count(),
        upcoming=build_rows(upcoming, now, job_url, edit_url),
        failing=failing,
    )


# -- the form ---------------------------------------------------------------------------------------
class ScheduleForm(forms.Form):
    """Create or edit a schedule; every check is ``lifecycle.recurring``'s, shown next to its field."""

    name = forms.CharField(max_length=recurring.NAME_MAX_LENGTH)
    func = forms.CharField(
        label="Function", max_length=256, help_text="Dotted path, e.g. myapp.tasks.rebuild"
    )
    schedule_type = forms.ChoiceField(label="Trigger", choices=())
    minutes = forms.IntegerField(
        required=False, help_text="For “Minutes”: run every this many minutes."
    )
    cron = forms.CharField(
        required=False, max_length=100, help_text="For “Cron”: e.g. 0 3 * * * (03:00 every day)."
    )
    repeats = forms.IntegerField(
        initial=-1, help_text="-1 runs forever; otherwise the number of runs left."
    )
    next_run = forms.DateTimeField(
        required=False,
        help_text="In the project's time zone; empty: now (cron: from the expression).",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    args = forms.CharField(
        required=False, label="Arguments", help_text='JSON list, e.g. [42, "full"]'
    )
    kwargs = forms.CharField(
        required=False, label="Keyword arguments", help_text='JSON object, e.g. {"dry_run": false}'
    )
    conflict_ids = forms.CharField(
        required=False,
        label="Conflict ids",
        help_text='JSON object, e.g. {"myapp.Project": [1, 2]}: runs lock these objects.',
    )

    FIELD_ERRORS = (
        ("minutes", "minutes"),
        ("cron", "cron"),
        ("schedule_type", "schedule_type"),
        ("repeats", "repeats"),
        ("next_run", "next_run"),
        ("kwargs", "kwargs"),
        ("args", "args"),
        ("name", "name"),
    )

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
        by_type = {
            InvalidTaskFunction: "func",
            InvalidConflictIds: "conflict_ids",
            UnknownModel: "conflict_ids",
        }
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
        "name": schedule.name,
        "schedule_type": schedule.schedule_type,
        "minutes": schedule.minutes,
        "cron": schedule.cron or "",
        "repeats": repeats,
        "func": schedule.func,
        "next_run": timezone.localtime(next_run) if next_run else None,
    }
    if recurring.is_ours(schedule):
        spec = recurring.spec_of(schedule)
        initial.update(
            func=spec["func"],
            args=json.dumps(spec.get("args") or []),
            kwargs=json.dumps(spec.get("kwargs") or {}),
            conflict_ids=json.dumps(spec["conflict_ids"]) if spec.get("conflict_ids") else "",
        )
    return initial


# -- on the view --------------------------------------------------------------------------------------
class SchedulePages:
    """Schedule URLs and permissions (mixed into ``TaskDashboardMixin``, used by its pages)."""

    request: HttpRequest
    page_url: Callable[..., str]
    job_url: Callable[[str], str]

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
        return bool(
            self.may_act() and user is not None and user.has_perm(f"django_q.{perm}_schedule")
        )
