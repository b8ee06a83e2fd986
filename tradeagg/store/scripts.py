"""Loads the Lua scripts in ``lua/`` by name and registers them with redis-py.

Each operation file is prepended with ``_window.lua``, the shared window
arithmetic, so a script stays one atomic operation in one file while the
arithmetic is written once. redis-py's Script object re-loads a script on
NOSCRIPT, so a restarted Redis with an empty script cache needs nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any


def _lua_dir() -> Path:
    """``lua/`` installed as ``tradeagg/lua`` (pip install .) or beside the package (checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "lua", package.parent / "lua"):
        if (candidate / "_window.lua").is_file():
            return candidate
    raise FileNotFoundError(f"lua scripts not found beside {package}")


LUA_DIR = _lua_dir()
PRELUDE = "_window.lua"
OPERATIONS = ("apply_trades", "read_window")


@cache
def source(name: str) -> str:
    """Full source of operation ``name``: prelude, then the operation file."""
    prelude = (LUA_DIR / PRELUDE).read_text()
    return prelude + "\n" + (LUA_DIR / f"{name}.lua").read_text()


class Scripts:
    """The registered scripts for one Redis client."""

    def __init__(self, client: Any) -> None:
        self.apply_trades = client.register_script(source("apply_trades"))
        self.read_window = client.register_script(source("read_window"))
