"""Real servers for the tests, started on 127.0.0.1 and a free port in a temporary directory.

Locally a missing binary skips the tests that need it; with ``REQUIRE_SERVICES=1`` (set by
``.ci/run``) it fails them instead.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

import pytest

REQUIRED = os.environ.get("REQUIRE_SERVICES") == "1"


def missing(what: str) -> None:
    """Skip locally, fail under CI."""
    if REQUIRED:
        pytest.fail(f"{what} is required (REQUIRE_SERVICES=1) but not available", pytrace=False)
    pytest.skip(f"{what} not available")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class RedisServer:
    """``persistent``: an append-only file (fsynced at every write), so ``restart`` comes back
    with the data, as a production Redis does."""

    def __init__(self, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.binary = binary
        self.persistent = persistent
        self.dir = tempfile.mkdtemp(prefix="pca-redis-")
        self.port = free_port()
        self.start()

    def start(self) -> None:
        durable = ["yes", "--appendfsync", "always"] if self.persistent else ["no"]
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--dir",
                self.dir,
                "--maxmemory-policy",
                "noeviction",
                "--appendonly",
                *durable,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def url(self) -> str:
        return self.db_url(0)

    def _terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis fsyncs its append-only file and exits
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        """Stop and start again on the same port and data directory."""
        self._terminate()
        self.start()

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.dir, ignore_errors=True)


class MemcachedServer:
    def __init__(self) -> None:
        binary = shutil.which("memcached")
        if binary is None:
            raise FileNotFoundError("memcached")
        self.port = free_port()
        user = ["-u", "root"] if os.geteuid() == 0 else []  # it refuses root without -u
        self.proc = subprocess.Popen(
            [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "64", *user],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    @property
    def location(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


class PostgresServer:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` user in a dir it owns."""

    def __init__(self) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise FileNotFoundError("postgresql")
        self.bindir = bindir
        self.dir = tempfile.mkdtemp(prefix="pca-pg-")
        self.port = free_port()
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.prefix = prefix
        self._run(
            [*prefix, f"{bindir}/initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres"]
        )
        self._run(
            [
                *prefix,
                f"{bindir}/pg_ctl",
                "-D",
                f"{self.dir}/data",
                "-w",
                "-o",
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
                "-l",
                f"{self.dir}/log",
                "start",
            ],
        )
        wait_for_port(self.port)

    @staticmethod
    def _run(args: list[str]) -> None:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def create_database(self, name: str) -> None:
        self._run(
            [
                *self.prefix,
                f"{self.bindir}/createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                name,
            ]
        )

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, f"{self.bindir}/pg_ctl", "-D", f"{self.dir}/data", "stop", "-m", "fast"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_settings() -> dict[str, Any]:
    """Start one PostgreSQL for this process tree (reused by qcluster subprocesses)."""
    if "PCA_PG_PORT" not in os.environ:
        server = PostgresServer()
        atexit.register(server.stop)
        os.environ["PCA_PG_PORT"] = str(server.port)
    port = os.environ["PCA_PG_PORT"]
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PCA_PG_NAME", "test_pca"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": port,
        "TEST": {"NAME": "test_pca"},
    }
