"""The Redis store's Lua scripts, one ``.lua`` file each beside this module (package data).

A script runs atomically on the server, which is why every write of the Redis store is one.
``prelude.lua`` holds the helpers several scripts share and is put before those that use them.
A few values belong to Python (the active statuses, a batch size) so the scripts cannot drift from
the rest of the store: the files name them ``$NAME`` and ``SCRIPTS`` holds the filled-in text.
"""

from __future__ import annotations

import json
import re
from importlib import resources

from ...statuses import ACTIVE

#: Keys per SADD inside scripts: small enough for Lua's ``unpack`` stack, large enough to be cheap.
LUA_BATCH = 500
_PLACEHOLDER = re.compile(r"\$[A-Z][A-Z_]*")


def encode_status(status: str) -> str:
    """A status as a registry row stores it (JSON text), which is what the scripts compare."""
    return json.dumps(str(status))


def _lua_str(value: str) -> str:
    """A Lua long-bracket string literal (no escaping rules to get wrong)."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    return f"[{eq}[{value}]{eq}]"


#: What each ``$NAME`` placeholder in the scripts stands for.
LUA_VALUES = {
    "ACTIVE_STATUSES": "{"
    + ", ".join(f"[ {_lua_str(encode_status(s))} ] = true" for s in ACTIVE)
    + "}",
    "LUA_BATCH": str(LUA_BATCH),
}


def load(name: str, *, prelude: bool = True) -> str:
    """The text of ``<name>.lua``, after the prelude when it uses its helpers, placeholders
    filled in. A placeholder without a value fails here, at import, not on the server."""
    folder = resources.files(__package__)
    text = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if prelude:
        text = folder.joinpath("prelude.lua").read_text(encoding="utf-8") + text
    for placeholder, value in LUA_VALUES.items():
        text = text.replace(f"${placeholder}", value)
    left = _PLACEHOLDER.search(text)
    if left:
        raise ValueError(f"{name}.lua: no value for {left.group()}")
    return text


#: Every script's text, read once. ``delete`` and ``active`` use none of the prelude's helpers.
SCRIPTS = {
    name: load(name, prelude=name not in ("delete", "active"))
    for name in (
        "acquire",
        "holders",
        "release",
        "release_expired",
        "renew",
        "task_locks",
        "set_fields",
        "finish",
        "delete",
        "active",
    )
}
