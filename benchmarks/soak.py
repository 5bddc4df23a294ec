"""Chaos soak of the production tier: ``python -m benchmarks.soak [--jobs N] [--seed S]``.

PostgreSQL, django-q2's Redis broker, the Redis lock store and a Redis cache; three qclusters of
two workers. Jobs of mixed length lock overlapping objects. While they run, workers are killed
(SIGKILL) and paused (SIGSTOP, then SIGCONT), the Redis server holding locks, registry and queue
is restarted (append-only file: it comes back with its data), the cache is flushed, and
``pcrud_cleanup_async`` runs every few seconds. At the end the invariants are checked from what
the jobs and lifecycle handlers logged, and printed as a table with the faults injected.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "benchmarks.soak_settings"
CLUSTERS = 3
OBJECTS = 60
IN_FLIGHT = 24
RESTART_EVERY = 20.0
STALL = 120.0


@dataclass
class Soak:
    jobs: int
    seed: int
    log_dir: Path
    faults: Counter[str] = field(default_factory=Counter)
    launched: list[str] = field(default_factory=list)
    refused: int = 0
    unsure: list[str] = field(default_factory=list)
    stopped: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)


def start_services() -> tuple[Any, Any, Any]:
    """PostgreSQL (database ``soak``), the Redis holding locks, registry and queue (append-only
    file, so a restart keeps its data) and the Redis cache."""
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]
    from tests.services import PostgresServer, RedisServer

    pg = PostgresServer()
    state, cache = RedisServer(persistent=True), RedisServer()
    os.environ.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        PCA_SOAK_PG_PORT=str(pg.port),
        PCA_SOAK_STATE_URL=state.url,
        PCA_SOAK_CACHE_URL=cache.url,
    )
    pg.create_database("soak")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return pg, state, cache


def start_clusters(log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
        "PCA_SOAK_LOG": str(log_dir),
    }
    clusters = []
    for i in range(CLUSTERS):
        with open(log_dir / f"qcluster-{i}.out", "w") as out:  # the child keeps its own handle
            clusters.append(
                subprocess.Popen(
                    [sys.executable, "-m", "django", "qcluster", f"--settings={SETTINGS}"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return clusters


def worker_pids() -> list[int]:
    from django_q.status import Stat

    try:
        return [pid for stat in Stat.get_all() for pid in stat.workers]
    except Exception:  # noqa: BLE001 - Redis is restarting: no worker to pick this time
        return []


def launcher(soak: Soak, rng: random.Random) -> None:
    """Launch ``soak.jobs`` jobs, keeping about ``IN_FLIGHT`` live; a refused launch (its objects
    are locked) is tried again later with other objects."""
    from powercrud_async.async_manager import AsyncManager
    from powercrud_async.exceptions import ConflictError, EnqueueError, LockStoreUnavailable
    from powercrud_async.stores import get_store

    manager = AsyncManager.resolve_manager(None)
    last = time.monotonic()
    while len(soak.launched) < soak.jobs:
        if time.monotonic() - last > STALL:
            print(f"no launch for {STALL} s: the cluster stopped taking jobs; stopping early")
            return
        try:
            if len(get_store().active()) >= IN_FLIGHT:
                time.sleep(0.05)
                continue
            objects = rng.sample(range(OBJECTS), rng.randint(1, 3))
            key = manager.launch_async_task(
                "benchmarks.soak_jobs.touch",
                objects,
                rng.randint(1, 3),
                rng.choice([0.005, 0.02, 0.1]),
                conflict_ids={"testapp.Project": objects},
            )
            soak.launched.append(key)
            last = time.monotonic()
        except ConflictError:
            soak.refused += 1
        except (LockStoreUnavailable, EnqueueError) as exc:
            soak.faults["launches failed (Redis down), retried"] += 1
            if isinstance(exc, EnqueueError):
                soak.unsure.append(str(exc).split()[5])  # the key: it may have reached the broker
            time.sleep(0.2)  # Redis is restarting; nothing was launched or locked


def injector(soak: Soak, rng: random.Random, state: Any, cache: Any) -> None:
    """One fault every 0.5-1.5 s until the launcher is done; Redis is restarted at most every
    ``RESTART_EVERY`` seconds (it needs time to load its data again)."""
    import redis

    restarted = time.monotonic()
    while not soak.done.wait(rng.uniform(0.5, 1.5)):
        kind = rng.choice(["kill", "stop", "stop", "restart redis", "flush cache"])
        if kind == "restart redis" and time.monotonic() - restarted < RESTART_EVERY:
            kind = "flush cache"
        if kind in ("kill", "stop"):
            pids = worker_pids()
            if not pids:
                continue
            pid = rng.choice(pids)
            try:
                if kind == "kill":
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGSTOP)
                    with soak.lock:
                        soak.stopped.add(pid)
                    threading.Timer(rng.uniform(0.5, 6.0), resume, (soak, pid)).start()
            except ProcessLookupError:
                continue
        elif kind == "restart redis":
            state.restart()
            restarted = time.monotonic()
        else:
            try:
                redis.Redis.from_url(cache.url).flushdb()
            except redis.exceptions.ConnectionError:
                continue
        soak.faults[kind] += 1


def resume(soak: Soak, pid: int) -> None:
    with soak.lock:
        if pid not in soak.stopped:
            return
        soak.stopped.discard(pid)
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def cleaner(soak: Soak, stop: threading.Event) -> None:
    """``pcrud_cleanup_async`` every 2 s; a run that exits non-zero (Redis restarting) is counted."""
    from django.core.management import CommandError, call_command

    with open(os.devnull, "w") as devnull:
        while not stop.wait(2.0):
            try:
                call_command("pcrud_cleanup_async", stdout=devnull, stderr=devnull)
                soak.faults["cleanup runs"] += 1
            except CommandError:
                soak.faults["cleanup runs (incomplete)"] += 1


def overlaps(log_dir: Path) -> tuple[int, int]:
    """``(touches, overlapping pairs)``: touches of one object by different attempts whose
    intervals intersect."""
    by_object: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    touches = 0
    for path in log_dir.glob("touch-*.log"):
        for line in path.read_text().splitlines():
            obj, task, attempt, start, end = line.split()
            by_object[obj].append((float(start), float(end), f"{task}#{attempt}"))
            touches += 1
    bad = 0
    for spans in by_object.values():
        spans.sort()
        latest_end, owner = 0.0, ""
        for start, end, who in spans:
            if start < latest_end and who != owner:
                bad += 1
            if end > latest_end:
                latest_end, owner = end, who
    return touches, bad


def check(soak: Soak) -> list[tuple[str, object, bool]]:
    """The invariants, each ``(name, figure, holds)``."""
    from powercrud_async.stores import get_store

    store = get_store()
    rows = store.get_many(soak.launched)
    lines = [
        line for path in soak.log_dir.glob("events-*.log") for line in path.read_text().splitlines()
    ]
    deliveries = [line.split() for line in lines if not line.endswith("superseded")]
    # What an idempotent handler records: one entry per task and event.
    terminal = Counter(name for name, _ in {(d[0], d[1]) for d in deliveries})
    first_hand = Counter(d[0] for d in deliveries if len(d) == 2)
    again = sum(1 for d in deliveries if len(d) == 3)
    doubled = [key for key, count in first_hand.items() if count > 1]
    superseded = sum(1 for line in lines if line.endswith("superseded"))
    why = Counter(row.reason.split(":")[0] for row in rows.values() if row.status == "failed")
    statuses = Counter(row.status for row in rows.values())
    touches, bad = overlaps(soak.log_dir)
    lost = [key for key in soak.launched if key not in rows]
    multiple = [key for key in soak.launched if terminal[key] != 1]
    strays = sorted(set(terminal) - set(soak.launched))
    (soak.log_dir / "launched.txt").write_text("\n".join(soak.launched))
    for key in multiple[:5]:
        row = rows.get(key)
        print(
            f"  {key}: {terminal[key]} terminal event(s), {row.status if row else 'no row'}"
            f" {row.reason if row else ''}"
        )
    for key in strays[:5]:
        print(
            f"  {key}: terminal event of a launch that raised"
            f" ({'EnqueueError' if key in soak.unsure else 'not an EnqueueError'})"
        )
    return [
        ("jobs launched", len(soak.launched), len(soak.launched) == soak.jobs),
        ("launches refused (conflict) and retried", soak.refused, True),
        ("by status", dict(statuses), True),
        ("failed, by reason", dict(why), True),
        ("attempts stopped as superseded", superseded, True),
        ("touches recorded", touches, touches > 0),
        ("overlapping touches of one object by two attempts", bad, bad == 0),
        (
            "jobs not terminal",
            sum(1 for r in rows.values() if r.is_active),
            not any(r.is_active for r in rows.values()),
        ),
        ("jobs without exactly one terminal event", len(multiple), not multiple),
        ("final events sent by cleanup (worker died after ending)", again, True),
        ("jobs whose workers delivered an end twice", len(doubled), not doubled),
        ("jobs lost (no registry row)", len(lost), not lost),
        ("terminal events of launches that raised", len(strays), not strays),
        ("locks left", len(store.locks()), not store.locks()),
    ]


def run(jobs: int, seed: int = 1) -> list[tuple[str, object, bool]]:
    """The whole soak; returns the invariant table (also printed)."""
    pg, state, cache = start_services()
    log_dir = Path(tempfile.mkdtemp(prefix="pca-soak-log-"))
    os.environ["PCA_SOAK_LOG"] = str(log_dir)
    soak = Soak(jobs=jobs, seed=seed, log_dir=log_dir)
    rng = random.Random(seed)
    clusters = start_clusters(log_dir)
    stop_cleaning = threading.Event()
    threads = [
        threading.Thread(target=injector, args=(soak, random.Random(seed + 1), state, cache)),
        threading.Thread(target=cleaner, args=(soak, stop_cleaning)),
    ]
    try:
        for thread in threads:
            thread.start()
        started = time.monotonic()
        launcher(soak, rng)
        soak.done.set()
        threads[0].join()
        with soak.lock:
            for pid in list(soak.stopped):
                soak.stopped.discard(pid)
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        from powercrud_async.stores import get_store

        deadline = time.monotonic() + 300
        far = datetime.now(dt_timezone.utc) + timedelta(days=1)
        while (
            get_store().active() or get_store().undelivered(far)
        ) and time.monotonic() < deadline:
            time.sleep(0.5)  # cleanup (every 2 s) ends, and reports, what killed workers left
        elapsed = time.monotonic() - started
        stop_cleaning.set()
        threads[1].join()
        results = check(soak)
    finally:
        soak.done.set()
        stop_cleaning.set()
        for proc in clusters:
            proc.send_signal(signal.SIGTERM)
        for proc in clusters:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        from django.db import connections

        connections.close_all()
        state.stop()
        cache.stop()
        pg.stop()
    print(
        f"Chaos soak: {jobs} jobs, seed {seed}, {CLUSTERS} qclusters x 2 workers, {elapsed:.0f} s"
    )
    from benchmarks._setup import table

    print(
        table(
            [(name, figure, "ok" if ok else "VIOLATED") for name, figure, ok in results],
            ("invariant / figure", "value", ""),
        )
    )
    print(table(sorted(soak.faults.items()), ("fault injected", "count")))
    print(f"logs: {log_dir}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results = run(args.jobs, args.seed)
    return 0 if all(ok for _, _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
