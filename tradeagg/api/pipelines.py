"""Pipelines split across connections, so that a long one does not wait a turn per 16 KB.

Redis reads at most ~16 KB of one client's pipeline per turn of its event loop,
and each turn also runs a command of every other client: behind the workers'
Lua applies (tens of ms each on a loaded machine) a 250-read pipeline (~650
bytes a read) took ~10 turns, 2.3-2.9 s, while PING answered in ~0.3 s
(bench_serve, serve.log timings). Split in parts sent at once on their own
connections, it takes about one turn. The client's pool bounds the connections
(a part beyond it waits for one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import gevent

T = TypeVar("T")
R = TypeVar("R")

WAYS = 8  # parts sent at once
LEAST = 16  # items per part at least (a few items need no split)


def split(items: Sequence[T], ways: int = WAYS, least: int = LEAST) -> list[Sequence[T]]:
    """``items`` in at most ``ways`` consecutive parts of at least ``least`` (but the last)."""
    n = len(items)
    size = max(least, -(-n // max(1, ways)))
    return [items[i : i + size] for i in range(0, n, size)]


def fetch_split(fetch: Callable[[Sequence[T]], list[R]], items: Sequence[T]) -> list[R]:
    """``fetch(items)``, in order, from parts fetched at once (the first error raised)."""
    parts = split(items)
    if len(parts) <= 1:
        return fetch(items)
    running = [gevent.spawn(fetch, part) for part in parts]
    gevent.joinall(running)
    out: list[R] = []
    for g in running:
        out.extend(g.get())  # raises the part's error, if any
    return out
