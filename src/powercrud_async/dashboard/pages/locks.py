"""The locks page: who holds which object, whether the holder is alive, and "who holds X?"."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.http import HttpRequest, HttpResponse

from ...stores import LockInfo, TaskInfo, get_store
from ..liveness import stuck_tasks
from ..paging import link, paged
from ..records import Moment, human_duration, status_of, title_of
from ..responses import region_or_page
from ..summaries import natural_key

PER_PAGE = 100


def holder_state(
    lock: LockInfo, info: TaskInfo | None, stuck: dict[str, Any], now: Any
) -> tuple[str, bool]:
    """(what the holder is doing, whether the lock is still doing its job)."""
    if info is None:
        return "reservation", lock.expires_at > now
    label = str(status_of(info.status).label)
    if not info.is_active:
        return label, False
    if lock.task_name in stuck:
        return stuck[lock.task_name].kind, False
    return label, True


def row(
    view: Any, lock: LockInfo, info: TaskInfo | None, stuck: dict[str, Any], held: int
) -> dict[str, Any]:
    state, alive = holder_state(lock, info, stuck, view.now)
    return {
        "model": lock.model_label,
        "pk": lock.object_pk,
        "task": lock.task_name,
        "title": title_of(info.label, info.func_path) if info else "",
        "task_url": view.job_url(lock.task_name),
        "state": str(state),
        "status": status_of(info.status).value if info else "",
        "alive": alive,
        "acquired": Moment.of(lock.acquired_at, view.now),
        "age": human_duration((view.now - lock.acquired_at).total_seconds()),
        "expires": Moment.of(lock.expires_at, view.now),
        "reason": stuck[lock.task_name].reason if lock.task_name in stuck else "",
        "owner_locks": held,
    }


def show(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Every lock (of visible jobs), filtered by model, pk or job, oldest first."""
    model = (request.GET.get("model") or "").strip().lower()
    pk = (request.GET.get("pk") or "").strip()
    task = (request.GET.get("task") or "").strip()
    store = get_store()
    found = store.locks(object_pk=pk or None)
    if model:
        found = [
            lock
            for lock in found
            if lock.model_label == model or lock.model_label.endswith("." + model)
        ]
    if task:
        found = [lock for lock in found if task in lock.task_name]
    owners = sorted({lock.task_name for lock in found})
    infos = store.get_many(owners[:2000])
    active = [i for i in infos.values() if i.is_active]
    stuck = stuck_tasks(view.now, active) if active else {}
    if not view.sees_everything:
        visible = view.visible_keys(owners[:2000])
        found = [lock for lock in found if lock.task_name in visible]
    found.sort(key=lambda lock: (lock.acquired_at, lock.model_label, natural_key(lock.object_pk)))
    query = {k: v for k, v in (("model", model), ("pk", pk), ("task", task)) if v}
    base = view.page_url("locks")
    context = paged(found, PER_PAGE, request.GET.get("page"), base, query)
    owner_locks = Counter(lock.task_name for lock in (store.locks() if query else found))
    rows = [
        row(view, lock, infos.get(lock.task_name), stuck, owner_locks.get(lock.task_name, 0))
        for lock in context["page_obj"].object_list
    ]
    answer = ""
    if model and pk:
        holders = sorted({str(r["task"]) for r in rows})
        nobody = "Nobody holds" if view.sees_everything else "None of your jobs holds"
        answer = (
            f"{model} {pk} is held by {', '.join(holders)}."
            if holders
            else f"{nobody} {model} {pk}."
        )
    every = store.locks() if view.sees_everything else found
    context.update(
        {
            "rows": rows,
            "model": model,
            "pk": pk,
            "task": task,
            "answer": answer,
            "labels": sorted({lock.model_label for lock in every}) if len(found) < 5000 else [],
            "filtered": bool(query),
            "self_url": link(base, query),
            "total": len(found),
        }
    )
    return region_or_page(view, context, "pca-locks-results", "locks_results.html")
