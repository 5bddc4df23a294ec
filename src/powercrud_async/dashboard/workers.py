"""Per-queue and per-cluster views: each django-q2 queue (cluster name) with its depth, oldest
waiting job, throughput and outcomes; each cluster process with its workers and uptime."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse

from .. import broker
from ..statuses import TaskStatus
from ..stores import get_store
from .liveness import QueueHealth, queue_health
from .overview import RATE_WINDOW, Cluster, clusters, starts
from .records import Moment
from .responses import region_or_page


@dataclass(slots=True)
class QueueRow:
    name: str
    configured: bool
    clusters: list[Cluster]
    done: int
    failed: int
    last_finished: Moment
    health: QueueHealth | None
    depth: int | None

    @property
    def workers(self) -> int:
        return sum(c.workers for c in self.clusters if c.healthy)


def workers_page(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Each queue with its clusters, throughput and health, and the jobs running now."""
    now = view.now
    hours = view.config["RECENT_WINDOW_HOURS"]
    found = clusters(now)
    outcomes = broker.cluster_outcomes(now - timedelta(hours=hours))
    ours = broker.configured_cluster_name()
    started_recently, last_started = starts(view.get_queryset(), view.schema, now)
    health = queue_health(
        now,
        get_store().active(),
        started_recently=started_recently,
        window=RATE_WINDOW,
        last_started=last_started,
        stuck_after=view.config["STUCK_QUEUE_AFTER"],
    )
    names = sorted(
        {ours, *(c.name for c in found), *(n for n in outcomes if n)} - {""},
        key=lambda n: (n != ours, n),
    )
    rows = []
    for name in names:
        result = outcomes.get(name, {})
        rows.append(
            QueueRow(
                name=name,
                configured=name == ours,
                clusters=[c for c in found if c.name == name],
                done=int(result.get("done") or 0),
                failed=int(result.get("failed") or 0),
                last_finished=Moment.of(result.get("last"), now),
                # The registry and the broker this site reads belong to its own queue.
                health=health if name == ours else None,
                depth=broker.queue_depth() if name == ours else None,
            )
        )
    key_field = view.schema["task_name"]
    running = []
    if view.schema["status"]:
        started = view.schema["started_at"] or view.schema["created_at"] or "pk"
        for obj in (
            view.get_queryset()
            .filter(**{view.schema["status"]: TaskStatus.IN_PROGRESS})
            .order_by(started)[:20]
        ):
            running.append(view.build_job(obj))
    context = {
        "queues": rows,
        "clusters": found,
        "running": running,
        "window_hours": hours,
        "region_url": request.get_full_path(),
        "has_keys": bool(key_field),
    }
    return region_or_page(view, context, "pca-workers", "workers_body.html", push=False)
