"""Run every benchmark, one fresh process each: ``python -m benchmarks`` from the repository root.

Each prints its own table of figures and ratios. ``python -m benchmarks locks progress`` runs a
subset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALL = ["locks", "progress", "tracking", "dashboard", "throughput"]


def main(names: list[str]) -> int:
    failed = 0
    for name in names or ALL:
        module = f"benchmarks.bench_{name}"
        if not (ROOT / "benchmarks" / f"bench_{name}.py").exists():
            print(f"== {module}: not present, skipped")
            continue
        print(f"== {module}", flush=True)
        failed |= subprocess.run([sys.executable, "-m", module], cwd=ROOT).returncode
        print(flush=True)
    return failed


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
