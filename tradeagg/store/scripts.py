"""Loads the Lua scripts in ``lua/`` by name and registers them with redis-py.

An operation file names the library files it needs (``lua/lib/*.lua``) in
header lines ``--@include lib/<name>.lua``; a library file may include others.
``source`` assembles the operation: each included file once, dependencies
first, then the operation itself, so a script stays one atomic operation
while each piece of window arithmetic is written once. redis-py's Script
object re-loads a script on NOSCRIPT, so a restarted Redis with an empty
script cache needs nothing.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

INCLUDE = re.compile(r"^--@include (\S+)\s*$", re.MULTILINE)


def _lua_dir() -> Path:
    """``lua/`` installed as ``tradeagg/lua`` (pip install .) or beside the package (checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "lua", package.parent / "lua"):
        if (candidate / "lib").is_dir():
            return candidate
    raise FileNotFoundError(f"lua scripts not found beside {package}")


LUA_DIR = _lua_dir()
#: scripts run through ``Scripts`` / ``source``; janitor_lock and trim_stream stand alone
OPERATIONS = (
    "apply_trades",
    "read_window",
    "verify_token",
    "retire_windows",
    "janitor_lock",
    "trim_stream",
)


def assemble(text: str, origin: str = "<inline>") -> str:
    """``text`` preceded by every library file it includes (transitively), each once."""
    done: set[str] = set()
    parts: list[str] = []

    def visit(body: str, where: str, stack: tuple[str, ...]) -> None:
        for name in INCLUDE.findall(body):
            if name in stack:
                raise ValueError(f"{where}: include cycle through {name}")
            if name in done:
                continue
            path = LUA_DIR / name
            if not path.is_file():
                raise FileNotFoundError(f"{where}: included {name} not found in {LUA_DIR}")
            lib = path.read_text()
            visit(lib, name, (*stack, name))
            done.add(name)
            parts.append(lib)

    visit(text, origin, ())
    return "\n".join([*parts, text])


@cache
def source(name: str) -> str:
    """Full source of operation ``name``: its includes, then the operation file."""
    return assemble((LUA_DIR / f"{name}.lua").read_text(), f"{name}.lua")


class Scripts:
    """The registered scripts for one Redis client."""

    def __init__(self, client: Any) -> None:
        self.apply_trades = client.register_script(source("apply_trades"))
        self.read_window = client.register_script(source("read_window"))
