"""docs/dashboard.md stays true: its configuration example is valid and complete."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from powercrud_async.dashboard.config import DEFAULTS, dashboard_config

DOC = (Path(__file__).resolve().parents[2] / "docs" / "dashboard.md").read_text()


def test_the_configuration_example_is_the_defaults(settings: Any) -> None:
    block = next(
        code for code in re.findall(r"```python\n(.*?)```", DOC, re.S) if '"DASHBOARD": {' in code
    )
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    settings.POWERCRUD_SETTINGS = namespace["POWERCRUD_SETTINGS"]
    assert dashboard_config() == DEFAULTS


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_option_is_documented(key: str) -> None:
    assert f"| `{key}` |" in DOC
