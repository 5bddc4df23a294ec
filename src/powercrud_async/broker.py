"""The only module that talks to django-q2 (the lint run checks it): enqueue, look into the
broker, cluster health, its Schedule and Task models, its post_execute signal."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.db import connections
from django.utils import timezone

from . import conf, inserts

logger = logging.getLogger("powercrud_async.broker")

RUNNER_PATH = "powercrud_async.runner.run_task"
HOOK_PATH = "powercrud_async.async_hooks.task_completion_hook"


def effective_sync(sync: Any, q_options: Any) -> bool:
    """Whether a launch runs in the caller: ``q_options["sync"]`` wins (django-q2's rule for
    ``q_options``), then the launch's own ``sync``, then ``Q_CLUSTER["sync"]`` (``Conf.SYNC``,
    django-q2's switch for tests and development)."""
    if isinstance(q_options, Mapping) and q_options.get("sync") is not None:
        return bool(q_options["sync"])
    if sync is not None:
        return bool(sync)
    from django_q.conf import Conf

    return bool(Conf.SYNC)


def _options(
    task_name: str,
    *,
    group: str | None,
    timeout: int | None,
    sync: bool,
    q_options: dict[str, Any] | None,
) -> dict[str, Any]:
    """django-q2's ``q_options`` for the runner of ``task_name``."""
    options: dict[str, Any] = {"ack_failure": True}
    options.update(q_options or {})  # a fresh dict: django-q2 pops keys from it
    options["task_name"] = task_name
    options["hook"] = HOOK_PATH
    options["sync"] = sync
    if group is not None:
        options["group"] = group
    if timeout is not None:
        options["timeout"] = timeout
    return options


def enqueue(
    task_name: str,
    envelope: dict[str, Any],
    *,
    group: str | None = None,
    timeout: int | None = None,
    sync: bool = False,
    q_options: dict[str, Any] | None = None,
) -> str:
    """Put the runner on the queue for ``task_name``; returns django-q2's task id.

    ``sync`` is the already decided ``effective_sync``: django-q2 then runs the runner (and its
    hook, for a success) in this process, and re-raises a failed job's exception here.
    """
    from django_q.tasks import async_task

    options = _options(task_name, group=group, timeout=timeout, sync=sync, q_options=q_options)
    return str(async_task(RUNNER_PATH, envelope, q_options=options))


class _Keeper:
    """Stands in for the broker while django-q2's ``async_task`` signs a job: it keeps the
    signed package instead of pushing it."""

    def __init__(self, list_key: str):
        self.list_key = list_key
        self.package: Any = None

    def enqueue(self, package: Any) -> str:
        self.package = package
        return "(pushed inside the launch transaction)"


def prepare_enqueue(
    task_name: str,
    envelope: dict[str, Any],
    *,
    group: str | None = None,
    timeout: int | None = None,
    q_options: dict[str, Any] | None = None,
) -> Callable[[], None] | None:
    """``enqueue`` (never sync) in two steps, for a launch whose transaction holds SQLite's
    write lock: the job is signed now, by django-q2's own ``async_task``, and the returned call
    pushes it. On the ORM broker that call is one INSERT built now; with a broker given in
    ``q_options``, that broker's ``enqueue``. Running the call again (a retried transaction)
    pushes the same package. ``None`` while ``pre_enqueue`` has receivers: they hear a job
    only once it is sure to be pushed."""
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signals import pre_enqueue
    from django_q.tasks import async_task

    if pre_enqueue.has_listeners():
        return None

    options = _options(task_name, group=group, timeout=timeout, sync=False, q_options=q_options)
    given = options.get("broker")
    keeper = _Keeper(options.get("cluster") or Conf.CLUSTER_NAME)
    options["broker"] = keeper
    async_task(RUNNER_PATH, envelope, q_options=options)
    package = keeper.package
    if given is not None:
        return lambda: given.enqueue(package)
    # What django-q2's ORM broker writes: the queue row, claimable from now on.
    row = OrmQ(key=keeper.list_key, payload=package, lock=timezone.now())
    alias = str(Conf.ORM)
    statement = inserts.insert_statement([row], alias) if inserts.saves_by_insert(OrmQ) else None

    def push() -> None:
        if statement is not None:
            inserts.execute(alias, statement)
        else:  # OrmQ.save() does more here (a receiver): a fresh row each time
            OrmQ(key=row.key, payload=row.payload, lock=row.lock).save(using=alias)

    return push


def orm_broker_alias() -> str | None:
    """The database alias of django-q2's ORM broker, or ``None`` for another broker."""
    from django_q.conf import Conf

    if Conf.ORM and not getattr(Conf, "BROKER_CLASS", None) and not Conf.IRON_MQ and not Conf.SQS:
        return str(Conf.ORM)
    return None


def _broker():  # type: ignore[no-untyped-def]
    from django_q.brokers import get_broker

    return get_broker()


def _is_redis(broker: Any) -> bool:
    """Whether ``broker`` is django-q2's Redis broker (whose module needs the optional ``redis``
    package, absent on the embedded default)."""
    try:
        from django_q.brokers.redis_broker import Redis
    except ImportError:
        return False
    return isinstance(broker, Redis)


def _orm_rows(broker: Any) -> list[Any]:
    return list(broker.get_connection().filter(key=broker.list_key))


def _redis_jobs(broker: Any) -> list[tuple[bytes, str | None]]:
    """``(payload, task name)`` of every job waiting in a Redis broker's list."""
    from django_q.signing import SignedPackage

    jobs = []
    for payload in broker.connection.lrange(broker.list_key, 0, -1):
        try:
            name = SignedPackage.loads(payload).get("name")
        except Exception:  # noqa: BLE001 - foreign or broken payloads are not ours
            name = None
        jobs.append((payload, None if name is None else str(name)))
    return jobs


def broker_task_names() -> set[str] | None:
    """Names of the jobs waiting in or claimed from the broker; ``None`` if we cannot tell."""
    from django_q.brokers.orm import ORM

    broker = _broker()
    try:
        if isinstance(broker, ORM):
            return {str(row.name()) for row in _orm_rows(broker)}
        if _is_redis(broker):
            return {name for _, name in _redis_jobs(broker) if name is not None}
    except Exception:  # noqa: BLE001
        logger.exception("Could not read the broker queue")
    return None


def live_clusters() -> int:
    """How many qclusters say they are alive: django-q2's ``Stat`` records, which each cluster
    rewrites every guard cycle with an expiry of a few seconds."""
    from django_q.status import Stat

    return len(Stat.get_all())


def out_of_sight_bound() -> float | None:
    """Seconds a job may be out of the broker's sight and still be about to run; ``None`` if
    this broker cannot tell (such a job is never called lost).

    The ORM broker keeps a row until the job is acknowledged, so a job not there is gone: 0.
    The Redis broker pops jobs into a cluster's memory (up to ``queue_limit`` of them), where a
    job can wait behind the jobs before it. With no live cluster nothing holds it: 0. Otherwise
    it runs within ``(ceil(queue_limit / workers) + 1) * timeout``: at most ``queue_limit - 1``
    jobs before it in memory and ``workers`` running, each done (or killed) within ``timeout``
    (``MAX_TASK_DURATION`` when the cluster sets none).
    """
    from django_q.brokers.orm import ORM
    from django_q.conf import Conf

    broker = _broker()
    if isinstance(broker, ORM):
        return 0.0
    if not _is_redis(broker):
        return None
    if not live_clusters():
        return 0.0
    from . import conf

    limit = int(Conf.QUEUE_LIMIT or 0)
    if limit <= 0:
        return float("inf")  # an unbounded in-memory queue: no wait is too long
    workers = max(1, int(Conf.WORKERS or 1))
    timeout = float(Conf.TIMEOUT or conf.get("MAX_TASK_DURATION"))
    return (-(-limit // workers) + 1) * timeout


def remove_queued(task_name: str) -> bool:
    """Delete a job that no worker has claimed yet. False if it is gone or already claimed."""
    from django_q.brokers.orm import ORM

    broker = _broker()
    if isinstance(broker, ORM):
        now = timezone.now()
        for row in _orm_rows(broker):
            if row.name() == task_name and row.lock <= now:
                return bool(broker.get_connection().filter(pk=row.pk, lock=row.lock).delete()[0])
        return False
    if _is_redis(broker):
        for payload, name in _redis_jobs(broker):
            if name == task_name:
                return bool(broker.connection.lrem(broker.list_key, 1, payload))
    return False


def queue_depth() -> int | None:
    try:
        return int(_broker().queue_size())
    except Exception:  # noqa: BLE001
        return None


def cluster_stats() -> list[dict[str, Any]]:
    """django-q2's own cluster heartbeat records (``Stat``), as plain dicts."""
    from django_q.conf import Conf
    from django_q.status import Stat

    try:
        stats = Stat.get_all()
    except Exception:  # noqa: BLE001
        logger.exception("Could not read django-q2 cluster stats")
        return []
    return [
        {
            "cluster_id": str(s.cluster_id),
            "name": str(Conf.CLUSTER_NAME or ""),
            "host": s.host,
            "status": s.status,
            "workers": len(s.workers),
            "pids": [int(pid) for pid in s.workers if pid],
            "uptime": s.uptime(),
            "task_q_size": s.task_q_size,
            "done_q_size": s.done_q_size,
            "reincarnations": s.reincarnations,
            "timestamp": s.timestamp,
        }
        for s in stats
    ]


def cluster_outcomes(since: Any) -> dict[str, dict[str, Any]]:
    """Per executing cluster name: jobs done and failed since ``since`` and the last finish
    (django-q2's result table; one grouped query)."""
    from django.db.models import Count, Max, Q
    from django_q.models import Task

    try:
        rows = (
            Task.objects.filter(stopped__gte=since)
            .values("cluster")
            .annotate(
                done=Count("id", filter=Q(success=True)),
                failed=Count("id", filter=Q(success=False)),
                last=Max("stopped"),
            )
            .order_by()
        )
        return {
            str(row["cluster"] or ""): {
                "done": row["done"],
                "failed": row["failed"],
                "last": row["last"],
            }
            for row in rows
        }
    except Exception:  # noqa: BLE001 - the result table is optional (results may be switched off)
        logger.exception("Could not read django-q2 results")
        return {}


def configured_cluster_name() -> str:
    from django_q.conf import Conf

    return str(Conf.CLUSTER_NAME or "")


# -- models, scheduler, signals ---------------------------------------------------------------
def schedule_model() -> Any:
    """django-q2's ``Schedule`` model (imported late: it needs the app registry)."""
    from django_q.models import Schedule

    return Schedule


def task_model() -> Any:
    """django-q2's ``Task`` model: the results it saved."""
    from django_q.models import Task

    return Task


def scheduler_time(when: datetime) -> datetime:
    """``when`` in the time zone django-q2's scheduler reads cron expressions in."""
    from django_q.utils import localtime

    found: datetime = localtime(when)
    return found


def enqueue_plain(func_path: str, *args: Any) -> str:
    """A bare django-q2 job outside the registry (the cluster health probe); its task id."""
    from django_q.tasks import async_task

    return str(async_task(func_path, *args, q_options={"ack_failure": True}))


def saved_result(task_id: str) -> Any:
    """What a django-q2 job returned, once its result is saved (``None`` before)."""
    from django_q.tasks import result

    return result(task_id)


def connect_post_execute(receiver: Any) -> None:
    """Hear about every job a worker finished (django-q2's ``post_execute`` signal), and note
    whether this process is a cluster worker (its ``pre_execute``)."""
    from django_q.signals import post_execute, pre_execute

    post_execute.connect(receiver, dispatch_uid="powercrud_async.post_execute")
    pre_execute.connect(_note_worker, dispatch_uid="powercrud_async.pre_execute")
    try:
        from django_q.signals import post_execute_in_worker
    except ImportError:  # pragma: no cover - every django-q2 we support has it
        return
    post_execute_in_worker.connect(
        keep_sqlite_connections, dispatch_uid="powercrud_async.keep_sqlite_connections"
    )


_in_worker = False


def in_worker() -> bool:
    """Whether this process runs the jobs a cluster delivers (django-q2 sent it a job that is
    not ``sync``): nobody waits on the call that ran a job, so what the job leaves to write
    may be written a moment later, together with other jobs'."""
    return _in_worker


def _note_worker(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    global _in_worker
    _in_worker = not task.get("sync", False)


#: Per database alias, the SQLite connection this worker keeps open between jobs.
_kept: dict[str, Any] = {}


def keep_sqlite_connections(sender: Any = None, **kwargs: Any) -> None:
    """After a job, keep the worker's SQLite connections for ``WORKER_SQLITE_CONNECTION_AGE``
    seconds where ``CONN_MAX_AGE`` is 0.

    django-q2 closes old connections before every job, so each job touching SQLite (every job
    launched through this package does: its registry row) opened the file again and ran its
    ``init_command``: more work than a short job's own writes. A SQLite connection is a file
    handle in this process, holding no lock between transactions; Django still closes one left
    unusable or outside autocommit before the next job, and this one once its age is over."""
    age = conf.get("WORKER_SQLITE_CONNECTION_AGE")
    if not age:
        return
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if (
            raw is None
            or conn.vendor != "sqlite"
            or conn.settings_dict.get("CONN_MAX_AGE", 0) != 0
            or _kept.get(conn.alias) is raw
        ):
            continue
        conn.close_at = now + age
        _kept[conn.alias] = raw
