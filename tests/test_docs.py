"""The reference pages document every setting and every system check id."""

from __future__ import annotations

import re
from pathlib import Path

from powercrud_async import conf

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    for key in conf.OPTIONS:
        assert f"`{key}`" in text, key


def test_every_check_id_is_documented() -> None:
    package = Path(conf.__file__).parent
    source = (package / "checks.py").read_text() + (
        package / "tracking" / "validation.py"
    ).read_text()
    documented = (DOCS / "checks.md").read_text()
    codes = set(re.findall(r'_id\("([EW]\d{3})"\)', source))
    codes |= set(re.findall(r'"powercrud_async\.([EW]\d{3})"', source))
    assert len(codes) > 15
    for code in sorted(codes):
        assert f"powercrud_async.{code}" in documented, code


def test_no_placeholder_pages() -> None:
    for page in DOCS.glob("*.md"):
        assert "This page is being written" not in page.read_text(), page.name
