"""The throughput chart: jobs finished per hour over the recent window, drawn server-side as SVG.

Geometry is computed here as plain numbers, so the template only interpolates numbers and
escaped labels: no JavaScript, no chart library, readable with scripts off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from ..statuses import TaskStatus
from .records import RecordSchema

WIDTH = 560
HEIGHT = 200
LEFT = 30
BOTTOM = 22
TOP = 10


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    fail_y: float
    fail_height: float
    succeeded: int
    failed: int
    label: str
    tick: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    gridlines: list[tuple[float, int]]
    width: int
    height: int
    left: int
    baseline: float
    total_ok: int
    total_failed: int
    peak: int
    hours: int

    @property
    def empty(self) -> bool:
        return not (self.total_ok or self.total_failed)

    @property
    def summary(self) -> str:
        return (
            f"{self.total_ok} succeeded and {self.total_failed} failed in the last {self.hours} h; "
            f"busiest hour {self.peak} jobs."
        )


def hourly_counts(
    qs: QuerySet[Any], schema: RecordSchema, since: datetime
) -> dict[tuple[datetime, str], int]:
    """``{(hour, status): n}`` for succeeded and failed jobs finished since ``since`` (one query)."""
    status = schema["status"]
    done, failed, updated = schema["completed_at"], schema["failed_at"], schema["updated_at"]
    if not status:
        return {}
    if done or failed:
        ends = [name for name in (done, failed) if name]
        end = Coalesce(*ends) if len(ends) > 1 else ends[0]
        window = Q(pk__in=[])
        for name in ends:
            window |= Q(**{f"{name}__gte": since})
    elif updated:
        end, window = updated, Q(**{f"{updated}__gte": since})
    else:
        return {}
    rows = (
        qs.filter(window, **{f"{status}__in": [TaskStatus.SUCCESS, TaskStatus.FAILED]})
        .annotate(pca_hour=TruncHour(end))
        .values("pca_hour", status)
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: dict[tuple[datetime, str], int] = {}
    for row in rows:
        hour = row["pca_hour"]
        if hour is None:
            continue
        key = (hour, row[status])
        counts[key] = counts.get(key, 0) + int(row["n"])
    return counts


def _nice_max(peak: int) -> int:
    if peak <= 4:
        return 4
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000):
        if peak <= step * 4:
            return step * 4
    magnitude = 10 ** (len(str(peak)) - 1)
    return ((peak // magnitude) + 1) * magnitude


def build_chart(counts: dict[tuple[datetime, str], int], now: datetime, hours: int = 24) -> Chart:
    end = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    slots = [end - timedelta(hours=hours - 1 - i) for i in range(hours)]
    by_hour: dict[datetime, tuple[int, int]] = {}
    for (hour, status), n in counts.items():
        local = timezone.localtime(hour) if timezone.is_aware(hour) else hour
        local = local.replace(minute=0, second=0, microsecond=0)
        ok, bad = by_hour.get(local, (0, 0))
        if status == TaskStatus.SUCCESS:
            ok += n
        else:
            bad += n
        by_hour[local] = (ok, bad)
    values = [by_hour.get(slot, (0, 0)) for slot in slots]
    peak = max((ok + bad for ok, bad in values), default=0)
    top = _nice_max(peak)
    plot_w = WIDTH - LEFT - 4
    plot_h = HEIGHT - BOTTOM - TOP
    baseline = float(HEIGHT - BOTTOM)
    slot_w = plot_w / hours
    bar_w = max(2.0, slot_w * 0.72)
    bars = []
    for i, (slot, (ok, bad)) in enumerate(zip(slots, values, strict=True)):
        x = LEFT + i * slot_w + (slot_w - bar_w) / 2
        ok_h = plot_h * ok / top
        bad_h = plot_h * bad / top
        label = f"{slot:%H}:00–{(slot + timedelta(hours=1)):%H}:00: {ok} succeeded, {bad} failed"
        bars.append(
            Bar(
                x=round(x, 1),
                width=round(bar_w, 1),
                ok_y=round(baseline - ok_h, 1),
                ok_height=round(ok_h, 1),
                fail_y=round(baseline - ok_h - bad_h, 1),
                fail_height=round(bad_h, 1),
                succeeded=ok,
                failed=bad,
                label=label,
                tick=f"{slot:%H}" if i % 3 == 0 else "",
            )
        )
    gridlines = [(round(baseline - plot_h * f, 1), int(top * f)) for f in (0.25, 0.5, 0.75, 1.0)]
    return Chart(
        bars=bars,
        gridlines=gridlines,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        baseline=baseline,
        total_ok=sum(ok for ok, _ in values),
        total_failed=sum(bad for _, bad in values),
        peak=peak,
        hours=hours,
    )
