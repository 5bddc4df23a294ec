"""The list's state (all of it in the URL), and the queries it turns into.

Everything a list page needs is two queries on the record table whatever the page size: one
aggregate for every status chip (and the paginator's total), one for the page itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_date

from ..statuses import TaskStatus
from .records import RecordSchema

#: URL names of the status chips, in display order, with the stored status they select.
STATUS_SLUGS: dict[str, TaskStatus | None] = {
    "queued": TaskStatus.PENDING,
    "running": TaskStatus.IN_PROGRESS,
    "failed": TaskStatus.FAILED,
    "cancelled": TaskStatus.CANCELLED,
    "succeeded": TaskStatus.SUCCESS,
    "attention": None,
}
SLUG_OF = {status.value: slug for slug, status in STATUS_SLUGS.items() if status is not None}
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
WINDOW_LABELS = {"1h": "last hour", "24h": "last 24 h", "7d": "last 7 days"}

#: Column key -> logical record field it sorts by.
COLUMN_FIELDS = {
    "task": "task_name",
    "status": "status",
    "progress": "percent",
    "user": "user_label",
    "created": "created_at",
    "updated": "updated_at",
    "duration": "duration",
    "affected": "affected_objects",
    "message": "message",
}
#: A model field named in ``fields`` that stands for one of our columns.
FIELD_COLUMNS = {
    "task_name": "task",
    "status": "status",
    "percent": "progress",
    "progress_payload": "progress",
    "user_label": "user",
    "created_at": "created",
    "updated_at": "updated",
    "duration": "duration",
    "affected_objects": "affected",
}


def parse_status(raw: str) -> str:
    raw = (raw or "").strip().lower()
    if raw in STATUS_SLUGS:
        return raw
    return SLUG_OF.get(raw, "")


@dataclass(frozen=True)
class ListState:
    """Search, filters, sort and page: parsed from and written back to the query string."""

    q: str = ""
    status: str = ""
    user: str = ""
    date_from: date | None = None
    date_to: date | None = None
    window: str = ""
    cleaned: str = ""
    sort: str = ""
    per_page: int = 25
    page: int = 1
    default_sort: str = "-created"
    default_per_page: int = 25
    errors: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(
        cls,
        query: QueryDict,
        *,
        sortable: set[str],
        page_sizes: list[int],
        default_per_page: int,
        default_sort: str = "-created",
    ) -> ListState:
        errors: list[str] = []

        def day(name: str) -> date | None:
            raw = (query.get(name) or "").strip()
            if not raw:
                return None
            try:
                parsed = parse_date(raw)
            except ValueError:
                parsed = None
            if parsed is None:
                errors.append(f"Ignored the date {raw[:40]!r}: use YYYY-MM-DD.")
            elif not day_in_range(parsed):
                errors.append(
                    f"Ignored the date {raw!r}: it is out of the range this site can search."
                )
                parsed = None
            return parsed

        sort = (query.get("sort") or "").strip()
        if sort and sort.lstrip("-") not in sortable:
            errors.append(f"Cannot sort by {sort.lstrip('-')!r}.")
            sort = ""
        try:
            per_page = int(query.get("per_page") or default_per_page)
        except ValueError:
            per_page = default_per_page
        if per_page not in page_sizes:
            per_page = default_per_page
        try:
            page = max(1, int(query.get("page") or 1))
        except ValueError:
            page = 1
        window = (query.get("window") or "").strip()
        cleaned = (query.get("cleaned") or "").strip().lower()
        return cls(
            q=(query.get("q") or "").strip()[:200],
            status=parse_status(query.get("status") or ""),
            user=(query.get("user") or "").strip()[:255],
            date_from=day("from"),
            date_to=day("to"),
            window=window if window in WINDOWS else "",
            cleaned=cleaned if cleaned in ("yes", "no") else "",
            sort=sort,
            per_page=per_page,
            page=page,
            default_sort=default_sort,
            default_per_page=default_per_page,
            errors=tuple(errors),
        )

    # -- the URL ---------------------------------------------------------------------------------
    def params(self, **changes: Any) -> list[tuple[str, str]]:
        state = replace(self, **changes) if changes else self
        pairs = [
            ("q", state.q),
            ("status", state.status),
            ("user", state.user),
            ("from", state.date_from.isoformat() if state.date_from else ""),
            ("to", state.date_to.isoformat() if state.date_to else ""),
            ("window", state.window),
            ("cleaned", state.cleaned),
            ("sort", state.sort if state.sort != state.default_sort else ""),
            ("per_page", str(state.per_page) if state.per_page != state.default_per_page else ""),
            ("page", str(state.page) if state.page > 1 else ""),
        ]
        return [(k, v) for k, v in pairs if v]

    def query_string(self, **changes: Any) -> str:
        query = QueryDict(mutable=True)
        for key, value in self.params(**changes):
            query[key] = value
        encoded = query.urlencode()
        return f"?{encoded}" if encoded else ""

    @property
    def effective_sort(self) -> str:
        return self.sort or self.default_sort

    @property
    def is_filtered(self) -> bool:
        return bool(
            self.q
            or self.status
            or self.user
            or self.date_from
            or self.date_to
            or self.window
            or self.cleaned
        )

    def active_filters(self) -> list[tuple[str, str]]:
        """(label, query string without it) for each filter in use, for removable chips."""
        chips = []
        if self.q:
            chips.append((f"Search: {self.q}", self.query_string(q="", page=1)))
        if self.user:
            chips.append((f"User: {self.user}", self.query_string(user="", page=1)))
        if self.date_from:
            chips.append(
                (
                    f"Launched from {self.date_from:%Y-%m-%d}",
                    self.query_string(date_from=None, page=1),
                )
            )
        if self.date_to:
            chips.append(
                (f"Launched until {self.date_to:%Y-%m-%d}", self.query_string(date_to=None, page=1))
            )
        if self.window:
            chips.append(
                (
                    f"Updated in the {WINDOW_LABELS[self.window]}",
                    self.query_string(window="", page=1),
                )
            )
        if self.cleaned:
            chips.append(
                (
                    "Cleaned up" if self.cleaned == "yes" else "Not cleaned up",
                    self.query_string(cleaned="", page=1),
                )
            )
        return chips


def _day_start(day: date) -> datetime:
    start = datetime.combine(day, time.min)
    return timezone.make_aware(start) if settings.USE_TZ else start


def day_in_range(day: date) -> bool:
    """Can the list filter from this day and until its end? The bounds of a day in the current
    zone, and in UTC (how databases store them), must both be representable datetimes."""
    try:
        bounds = (_day_start(day), _day_start(day + timedelta(days=1)))
        if settings.USE_TZ:
            for bound in bounds:
                bound.astimezone(dt_timezone.utc)
    except (OverflowError, ValueError):
        return False
    return True


def attention_q(schema: RecordSchema, stuck: set[str], since: datetime) -> Q:
    """Failed recently, or queued/running but dead or overdue in the registry."""
    status, updated, key = schema["status"], schema["updated_at"], schema["task_name"]
    result = Q(pk__in=[])
    if status:
        failed = Q(**{status: TaskStatus.FAILED})
        if updated:
            failed &= Q(**{f"{updated}__gte": since})
        result |= failed
    if key and stuck:
        result |= Q(**{f"{key}__in": sorted(stuck)})
    return result


def filter_records(
    qs: QuerySet[Any], state: ListState, schema: RecordSchema, *, now: datetime
) -> QuerySet[Any]:
    """Every filter except the status (the chips count across statuses)."""
    if state.q:
        for term in state.q.split()[:8]:
            term_q = Q(pk__in=[])
            for name in schema.text_search_fields:
                term_q |= Q(**{f"{name}__icontains": term})
            qs = qs.filter(term_q)
    if state.user and schema["user_label"]:
        qs = qs.filter(**{f"{schema['user_label']}__iexact": state.user})
    created = schema["created_at"]
    if created and state.date_from:
        qs = qs.filter(**{f"{created}__gte": _day_start(state.date_from)})
    if created and state.date_to:
        qs = qs.filter(**{f"{created}__lt": _day_start(state.date_to + timedelta(days=1))})
    if state.window and schema["updated_at"]:
        qs = qs.filter(**{f"{schema['updated_at']}__gte": now - WINDOWS[state.window]})
    if state.cleaned and schema["cleaned_up"]:
        qs = qs.filter(**{schema["cleaned_up"]: state.cleaned == "yes"})
    return qs


def status_filter(state: ListState, schema: RecordSchema, attention: Q) -> Q:
    if not state.status:
        return Q()
    if state.status == "attention":
        return attention
    target = STATUS_SLUGS[state.status]
    return Q(**{schema["status"]: target}) if schema["status"] else Q()


def chip_counts(qs: QuerySet[Any], schema: RecordSchema, attention: Q) -> dict[str, int]:
    """One aggregate query: the total and a count per chip."""
    aggregates: dict[str, Any] = {"all": Count("pk")}
    status = schema["status"]
    for slug, target in STATUS_SLUGS.items():
        if target is not None and status:
            aggregates[slug] = Count("pk", filter=Q(**{status: target}))
    aggregates["attention"] = Count("pk", filter=attention)
    return {k: int(v or 0) for k, v in qs.aggregate(**aggregates).items()}


def order_records(qs: QuerySet[Any], state: ListState, columns: dict[str, str]) -> QuerySet[Any]:
    """``columns`` maps a sortable column key to its model field."""
    key = state.effective_sort
    desc = key.startswith("-")
    name = columns.get(key.lstrip("-"))
    if not name:
        return qs.order_by("-pk")
    expr = F(name).desc(nulls_last=True) if desc else F(name).asc(nulls_last=True)
    return qs.order_by(expr, "-pk" if desc else "pk")
