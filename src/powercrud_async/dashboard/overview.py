"""What the overview shows, gathered in a fixed number of queries whatever the table size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet

from .. import broker
from ..statuses import ACTIVE, TaskStatus
from ..stores import get_store
from .chart import Chart, build_chart, hourly_counts
from .liveness import QueueHealth, Stuck, heartbeat_age, queue_health, stuck_tasks
from .records import Job, Moment, RecordSchema, build_job, human_duration

LIST_LIMIT = 8
#: Jobs started within this many seconds give the recent start rate.
RATE_WINDOW = 900


@dataclass(slots=True)
class Cluster:
    cluster_id: str
    name: str
    host: str
    status: str
    workers: int
    uptime: str
    seen: Moment
    age: float | None
    healthy: bool
    task_q_size: Any
    reincarnations: int
    pids: list[int] = field(default_factory=list)
    done_q_size: Any = None


@dataclass(slots=True)
class StuckRow:
    stuck: Stuck
    job: Job | None
    heartbeat: str
    url: str


@dataclass(slots=True)
class Overview:
    counts: dict[str, int]
    locks: int
    lock_owners: int
    queue_depth: int | None
    clusters: list[Cluster]
    oldest_running: Job | None
    oldest_age: str
    stuck: list[StuckRow]
    recent_failures: list[Job]
    running: list[Job]
    chart: Chart
    window_hours: int
    queue: QueueHealth | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def workers(self) -> int:
        return sum(c.workers for c in self.clusters if c.healthy)

    @property
    def work(self) -> tuple[str, str]:
        return work_state(self.counts, self.queue) if self.queue else ("", "")

    @property
    def healthy_clusters(self) -> int:
        return sum(1 for c in self.clusters if c.healthy)


def clusters(now: datetime) -> list[Cluster]:
    found = []
    for stat in broker.cluster_stats():
        seen = stat.get("timestamp")
        age = (now - seen).total_seconds() if seen else None
        uptime = stat.get("uptime")
        found.append(
            Cluster(
                cluster_id=str(stat.get("cluster_id", ""))[:8],
                name=str(stat.get("name") or ""),
                host=str(stat.get("host", "")),
                status=str(stat.get("status", "")),
                workers=int(stat.get("workers") or 0),
                uptime=human_duration(uptime) if isinstance(uptime, (int, float)) else "",
                seen=Moment.of(seen, now),
                age=age,
                healthy=age is not None
                and age < 60
                and str(stat.get("status", "")).lower() != "stopped",
                task_q_size=stat.get("task_q_size"),
                reincarnations=int(stat.get("reincarnations") or 0),
                pids=list(stat.get("pids") or []),
                done_q_size=stat.get("done_q_size"),
            )
        )
    return found


def starts(qs: QuerySet[Any], schema: RecordSchema, now: datetime) -> tuple[int, datetime | None]:
    """(jobs started in the last ``RATE_WINDOW`` seconds, when one last started): one aggregate."""
    started = schema["started_at"]
    if not started:
        return 0, None
    row = qs.aggregate(
        n=Count("pk", filter=Q(**{f"{started}__gte": now - timedelta(seconds=RATE_WINDOW)})),
        last=Max(started),
    )
    return int(row["n"] or 0), row["last"]


def work_state(counts: dict[str, int], queue: QueueHealth) -> tuple[str, str]:
    """What the workers are doing, read from the jobs: (state, sentence)."""
    if queue.state == "stuck":
        return "stuck", f"Stuck queue: {queue.reason}."
    if counts["running"]:
        return (
            "working",
            f"Working: {counts['running']} job{'s' if counts['running'] != 1 else ''} running.",
        )
    if queue.waiting:
        return (
            "working",
            f"{queue.waiting} job{'s' if queue.waiting != 1 else ''} waiting to start.",
        )
    return "idle", "Idle: nothing running or waiting."


def build_overview(
    qs: QuerySet[Any],
    schema: RecordSchema,
    now: datetime,
    *,
    window_hours: int,
    job_url: Callable[[str], str],
    everything: bool = True,
    stuck_after: float = 120,
) -> Overview:
    """Everything for a viewer who sees every job; otherwise only what ``qs`` (their jobs) holds:
    no other job's stuck row, and no global figure (locks, queue depth, clusters)."""
    since = now - timedelta(hours=window_hours)
    status = schema["status"]
    updated = schema["updated_at"]
    key_field = schema["task_name"]
    counts = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "finished": 0}
    names = {
        TaskStatus.PENDING: "queued",
        TaskStatus.IN_PROGRESS: "running",
        TaskStatus.SUCCESS: "succeeded",
        TaskStatus.FAILED: "failed",
        TaskStatus.CANCELLED: "cancelled",
    }
    if status:
        for row in (
            qs.filter(**{f"{status}__in": list(ACTIVE)})
            .values(status)
            .annotate(n=Count("pk"))
            .order_by()
        ):
            counts[names[TaskStatus(row[status])]] = int(row["n"])
        if updated:
            recent = (
                qs.filter(**{f"{updated}__gte": since})
                .exclude(**{f"{status}__in": list(ACTIVE)})
                .values(status)
                .annotate(n=Count("pk"))
                .order_by()
            )
            for row in recent:
                name = (
                    names.get(TaskStatus(row[status])) if row[status] in TaskStatus.values else None
                )
                if name:
                    counts[name] = int(row["n"])
            counts["finished"] = counts["succeeded"] + counts["failed"] + counts["cancelled"]

    def jobs(rows: Any, stuck: dict[str, Stuck] | None = None) -> list[Job]:
        out = []
        for obj in rows:
            key = str(schema.value(obj, "task_name", "") or obj.pk)
            found = stuck.get(key) if stuck else None
            reason = found.reason if found is not None else ""
            out.append(build_job(schema, obj, now, url=job_url(key), stuck=reason))
        return out

    active = get_store().active()
    stuck = stuck_tasks(now, active)
    running: list[Job] = []
    oldest: Job | None = None
    failures: list[Job] = []
    stuck_jobs: dict[str, Job] = {}
    if status:
        started = schema["started_at"] or schema["created_at"] or "pk"
        running = jobs(
            qs.filter(**{status: TaskStatus.IN_PROGRESS}).order_by(started)[:LIST_LIMIT], stuck
        )
        oldest = running[0] if running else None
        order = f"-{updated}" if updated else "-pk"
        recent_failed = qs.filter(**{status: TaskStatus.FAILED})
        if updated:
            recent_failed = recent_failed.filter(**{f"{updated}__gte": since})
        failures = jobs(recent_failed.order_by(order)[:LIST_LIMIT])
    if stuck and key_field:
        for job in jobs(qs.filter(**{f"{key_field}__in": list(stuck)[:200]}), stuck):
            stuck_jobs[job.key] = job
    stuck_rows = [
        StuckRow(s, stuck_jobs.get(name), human_duration(heartbeat_age(s.info, now)), job_url(name))
        for name, s in sorted(stuck.items(), key=lambda item: item[1].info.created_at or now)
        if everything or name in stuck_jobs
    ]
    locks, owners = get_store().lock_counts() if everything else (0, 0)
    oldest_age = ""
    if oldest is not None and oldest.started.value is not None:
        oldest_age = human_duration((now - oldest.started.value).total_seconds())
    chart = build_chart(hourly_counts(qs, schema, since), now, hours=min(window_hours, 48))
    started_recently, last_started = starts(qs, schema, now)
    health = queue_health(
        now,
        active,
        started_recently=started_recently,
        window=RATE_WINDOW,
        last_started=last_started,
        stuck_after=stuck_after,
    )
    return Overview(
        counts=counts,
        locks=locks,
        lock_owners=owners,
        queue_depth=broker.queue_depth() if everything else None,
        clusters=clusters(now) if everything else [],
        oldest_running=oldest,
        oldest_age=oldest_age,
        stuck=stuck_rows,
        recent_failures=failures,
        running=running,
        chart=chart,
        window_hours=window_hours,
        queue=health,
    )
