"""The Python examples in docs/tracking.md and docs/migration-guide.md run.

``myapp`` is the docs' example app: its model labels become the test app's, and its modules
(``myapp.async_manager``, ``myapp.tasks``, ``myapp.formatters``) become one importable module per
page, so managers and jobs defined in one example can be launched by dotted path in the next.
Blocks preceded by ``<!-- docs-test: skip ... -->`` (model definitions) are not run.
"""

from __future__ import annotations

import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"(<!-- docs-test: skip[^>]*-->\s*)?```python\n(.*?)```", re.S)


def blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text()
    found = []
    for skip, code in BLOCK.findall(text):
        if not skip:
            found.append(textwrap.dedent(code))
    return found


def adapt(code: str, module: str) -> str:
    for name in ("myapp.async_manager", "myapp.tasks", "myapp.formatters"):
        code = code.replace(name, module)
    code = code.replace("myapp.models", "tests.testapp.models")
    return code.replace("myapp.", "testapp.")


@pytest.mark.parametrize("page", ["tracking.md", "migration-guide.md"])
def test_examples_run(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    module_name = "tests._docs_" + page.replace("-", "_").replace(".md", "")
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    try:
        if page == "migration-guide.md":
            exec("def rebuild(ids, *, task_key=None):\n    return len(ids)\n", module.__dict__)
        codes = blocks(page)
        assert len(codes) >= 5
        for index, code in enumerate(codes):
            try:
                exec(compile(adapt(code, module_name), f"{page}[{index}]", "exec"), module.__dict__)
            except Exception as exc:  # pragma: no cover - the message names the block
                raise AssertionError(f"example {index} of {page} failed:\n{code}") from exc
    finally:
        sys.modules.pop(module_name, None)
