"""The windows tokens carry, listed and retired (``tradeagg windows list|retire``).

A token keeps every window any release configured (``apply_trades.lua``), so
that releases with different ``TRADEAGG_WINDOWS`` can run side by side during
a rolling deploy. Windows leave only here: ``retire`` walks every token (SCAN
of ``token:{*}:indices``, in batches) and calls ``retire_windows.lua`` on
each, which deletes the labels' index and fields and trims the list to the
longest exact window left, a bounded number of elements per call. Bucketed
windows (CONTRACT §2c) have no index: a token carries one when its
aggregates hold ``<label>:from`` (``lua/lib/long.lua``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tradeagg.clock import now_ms
from tradeagg.contract.keys import INDICES_MATCH, TokenKeys, apply_keys, token_of_indices
from tradeagg.store.connection import text
from tradeagg.store.scripts import source

BATCH = 200  # tokens per pipeline
TRIM_PER_CALL = 10_000  # list elements one retire call may trim


@dataclass
class Carried:
    """One window label as the tokens carry it."""

    label: str
    tokens: int = 0
    partial: int = 0  # tokens on which it is partial now
    kind: str = "exact"  # or "bucketed" (CONTRACT §2c: no index, an ``L:from`` field)


@dataclass
class RetireRun:
    tokens: int = 0  # tokens seen
    retired: int = 0  # tokens that lost at least one label
    trimmed: int = 0  # list elements trimmed
    kept: list[str] = field(default_factory=list)  # tokens carrying only retired windows


def tokens(client: Any, batch: int = BATCH) -> Iterator[list[str]]:
    """Every token with state, ``batch`` at a time (SCAN: each primary of a cluster)."""
    out: list[str] = []
    for key in client.scan_iter(match=INDICES_MATCH, count=batch):
        token = token_of_indices(text(key))
        if token is not None:
            out.append(token)
        if len(out) >= batch:
            yield out
            out = []
    if out:
        yield out


def carried(client: Any, on_progress: Callable[[int], None] | None = None) -> list[Carried]:
    """Every label the tokens carry, with how many carry it and on how many it is partial."""
    found: dict[str, Carried] = {}
    seen = 0
    for chunk in tokens(client):
        pipe = client.pipeline(transaction=False)
        for token in chunk:
            pipe.hkeys(TokenKeys(token).indices)
            pipe.hkeys(TokenKeys(token).aggregates)
        got = pipe.execute()
        labels = []
        for exact, fields in zip(got[::2], got[1::2], strict=True):
            ls = [(text(x), "exact") for x in exact]
            names = {text(f) for f in fields}
            ls += [(f[: -len(":from")], "bucketed") for f in sorted(names) if f.endswith(":from")]
            labels.append(ls)
        pipe = client.pipeline(transaction=False)
        for token, ls in zip(chunk, labels, strict=True):
            names = [f"{x}:complete_from" for x, _ in ls] or ["-"]
            pipe.hmget(TokenKeys(token).aggregates, names)
        now = now_ms()
        for ls, cfs in zip(labels, pipe.execute(), strict=True):
            for (label, kind), cf in zip(ls, cfs, strict=False):
                c = found.setdefault(label, Carried(label, kind=kind))
                c.tokens += 1
                c.partial += cf is not None and int(cf) > now
        seen += len(chunk)
        if on_progress is not None:
            on_progress(seen)
    return list(found.values())


class Retirer:
    """Drops window labels from every token."""

    def __init__(self, client: Any, trim_per_call: int = TRIM_PER_CALL) -> None:
        self.client = client
        self.trim_per_call = trim_per_call
        self._retire = client.register_script(source("retire_windows"))

    def retire(
        self, labels: list[str], on_progress: Callable[[int], None] | None = None
    ) -> RetireRun:
        out = RetireRun()
        arg = ",".join(labels)
        for chunk in tokens(self.client):
            todo = chunk
            while todo:  # a token with more to trim is called again, until none is left
                pipe = self.client.pipeline(transaction=False)
                for token in todo:
                    keys = [*apply_keys(token), *TokenKeys(token).prev_makers()]
                    self._retire(keys=keys, args=[arg, self.trim_per_call], client=pipe)
                again = []
                for token, (retired, dropped, left, kept) in zip(todo, pipe.execute(), strict=True):
                    out.retired += retired > 0
                    out.trimmed += dropped
                    if kept:
                        out.kept.append(token)
                    if left > 0 and dropped > 0:  # no progress: never loop on a token
                        again.append(token)
                todo = again
            out.tokens += len(chunk)
            if on_progress is not None:
                on_progress(out.tokens)
        return out
