"""The wheel carries templates, static files and migrations, and installs into a fresh venv."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.packaging
#: The Redis store's scripts: package data it reads at import, so the wheel must carry each one.
LUA_SCRIPTS = (
    "prelude.lua",
    "acquire.lua",
    "holders.lua",
    "release.lua",
    "renew.lua",
    "task_locks.lua",
    "set_fields.lua",
    "delete.lua",
    "active.lua",
    "release_expired.lua",
    "finish.lua",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("django_powercrud_async-*.whl")
    return found


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "powercrud_async/__init__.py",
        "powercrud_async/py.typed",
        "powercrud_async/migrations/0001_initial.py",
        "powercrud_async/templates/powercrud_async/partials/progress.html",
        "powercrud_async/management/commands/pcrud_cleanup_async.py",
        "powercrud_async/stores/lua/__init__.py",
        *(f"powercrud_async/stores/lua/{script}" for script in LUA_SCRIPTS),
    ):
        assert required in names, required
    assert not any(name.startswith(("tests/", "sample/")) for name in names)


def test_wheel_installs_into_a_fresh_virtualenv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True
    )
    script = (
        "import pathlib, powercrud_async\n"
        "root = pathlib.Path(powercrud_async.__file__).parent\n"
        "assert (root / 'templates/powercrud_async/partials/progress.html').is_file()\n"
        "assert (root / 'migrations/0001_initial.py').is_file()\n"
        "from django.conf import settings\n"
        "settings.configure()\n"
        "from powercrud_async.stores.lua import SCRIPTS\n"
        "assert 'local function owned_locks' in SCRIPTS['release']\n"
        "print(powercrud_async.__version__)\n"
    )
    result = subprocess.run(
        [python, "-c", script], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    assert result.stdout.strip() == "0.1.0"
