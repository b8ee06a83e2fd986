"""The trending list: every active token read exactly as of one instant, then ranked.

No key scan: the engine stamps each token it applies in its shard's sorted set
``tradeagg:{sN}:active`` (score = wall ms of the apply), so the candidates are
the members of ``settings.shards`` small sets. Each candidate is read with
``read_window.lua`` (the same exact read as ``show``), pipelined in batches so
that a few thousand tokens cost a few round trips, not thousands.

With the wall clock and no explicit ``at``, a worker may apply a trade to a
token between our choice of "now" and our read of it; that token then answers
"past". We read again as of an instant a little ahead (the newest such
``last_update`` plus twice the time a pass took), so that every token is read
as of one single instant even while workers keep applying; the answer then
covers the trades applied when each token was read, as any read does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import gevent
import redis

from tradeagg.contract.keys import active, token_keys
from tradeagg.engine.apply import now_ms
from tradeagg.engine.read import Reader, TokenView, WindowView
from tradeagg.errors import StoreError, UsageError
from tradeagg.settings import Settings
from tradeagg.store.connection import text

RANK_BY = ("volume", "buys", "sells", "price_change_pct", "trades")
BATCH = 500
YIELD_EVERY = 50  # tokens parsed between two yields to other greenlets
CATCH_UP_TRIES = 5


@dataclass(frozen=True)
class Ranked:
    """One row of the trending list."""

    rank: int
    token: str
    view: TokenView

    def window(self, label: str) -> WindowView:
        return self.view.windows[label]


@dataclass(frozen=True)
class Ranking:
    """A ranked list as of ``at``, plus what it was ranked over."""

    at: int
    window: str
    by: str
    candidates: int  # tokens read
    rows: list[Ranked]
    views: list[TokenView]  # every token read, unranked (the demo sums them)


def metric(w: WindowView, by: str) -> Decimal | int | float | None:
    """The value ``top --by`` ranks on; None means "not ranked" (no trade in the window)."""
    if w.trades == 0:
        return None
    if by == "trades":
        return w.trades
    return getattr(w, by)


def rank(views: Iterable[TokenView], window: str, by: str, limit: int | None) -> list[Ranked]:
    """Descending by the metric, ties by token address ascending; tokens without trades out."""
    scored = []
    for v in views:
        value = metric(v.windows[window], by)
        if value is not None:
            scored.append((value, v))
    scored.sort(key=lambda s: s[1].token)
    scored.sort(key=lambda s: s[0], reverse=True)  # stable: equal values keep address order
    top = scored if limit is None else scored[:limit]
    return [Ranked(i + 1, v.token, v) for i, (_, v) in enumerate(top)]


class _Prefetched(Reader):
    """A Reader whose first read of a token answers from a pipelined result.

    ``Reader.read`` keeps its parsing and its handling of a worker clock
    ahead of ours; only the round trip is batched.
    """

    def __init__(self, base: Reader, raws: dict[str, list[Any]]) -> None:
        super().__init__(base.client, base.settings, base.scripts)
        self._raws = raws

    def _call(self, token: str, at: int | None) -> list[Any]:
        raw = self._raws.pop(token, None)
        return raw if raw is not None else super()._call(token, at)


class Ranker:
    """Reads every active token as of one instant and ranks them."""

    def __init__(self, client: Any, settings: Settings, reader: Reader | None = None) -> None:
        self.client = client
        self.settings = settings
        self.reader = reader or Reader(client, settings)
        self._windows = ",".join(f"{w.label}:{w.ms}" for w in settings.windows)

    def active_tokens(self, at: int | None = None) -> list[str]:
        """Members of every shard's active set (wall clock: those that may still have trades).

        A token stamped before ``at - longest window - max skew`` holds no
        trade that any window can still contain, so it is skipped.
        """
        low = "-inf"
        if at is not None and self.settings.clock == "wall":
            low = str(at - self.settings.longest_ms - self.settings.max_skew_ms)
        try:
            pipe = self.client.pipeline(transaction=False)
            for shard in range(self.settings.shards):
                pipe.zrangebyscore(active(shard), low, "+inf")
            found = pipe.execute()
        except redis.RedisError as exc:
            raise StoreError(f"reading the active token index failed: {exc}") from None
        return sorted({text(t) for members in found for t in members})

    def read_all(self, tokens: Sequence[str], at: int | None) -> tuple[int | None, list[TokenView]]:
        """Views of ``tokens`` as of one common ``at`` (see the module doc for the catch-up)."""
        explicit = at is not None
        if at is None and self.settings.clock == "wall":
            at = now_ms()
        for _ in range(CATCH_UP_TRIES):
            started = time.monotonic()
            raws = self._fetch(tokens, at)
            newer = [int(text(r[2])) for r in raws.values() if text(r[0]) == "past"]
            if not newer:
                reader = _Prefetched(self.reader, raws)
                views = []
                for i, t in enumerate(tokens):
                    if i % YIELD_EVERY == YIELD_EVERY - 1:
                        gevent.sleep(0)  # a long parse lets other greenlets (SSE) run
                    views.append(reader.read(t, at))
                return at, views
            if explicit:
                first = next(t for t, r in raws.items() if text(r[0]) == "past")
                raise UsageError(
                    f"--at {at} is earlier than last_update {text(raws[first][2])} of token {first}"
                )
            # tokens move while we read them: aim ahead by twice what a pass takes
            ahead = int(2_000 * (time.monotonic() - started)) + 1
            at = max(max(newer), now_ms()) + ahead
        raise StoreError(f"tokens kept updating past at={at}; try again or pass --at")

    def _fetch(self, tokens: Sequence[str], at: int | None) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        arg = "" if at is None else at
        try:
            for i in range(0, len(tokens), BATCH):
                chunk = tokens[i : i + BATCH]
                pipe = self.client.pipeline(transaction=False)
                for t in chunk:
                    self.reader.scripts.read_window(
                        keys=token_keys(t), args=[arg, self._windows], client=pipe
                    )
                out.update(zip(chunk, pipe.execute(), strict=True))
        except redis.RedisError as exc:
            raise StoreError(f"batched read failed: {exc}") from None
        return out

    def top(
        self,
        window: str,
        by: str = "volume",
        limit: int | None = 20,
        at: int | None = None,
    ) -> Ranking:
        """The trending list: ``limit`` tokens by ``by`` in ``window`` as of ``at`` (default now)."""
        labels = [w.label for w in self.settings.windows]
        if window not in labels:
            raise UsageError(f"--window {window!r} is not configured (TRADEAGG_WINDOWS: {labels})")
        if by not in RANK_BY:
            raise UsageError(f"--by {by!r}: choose one of {', '.join(RANK_BY)}")
        if limit is not None and limit < 1:
            raise UsageError(f"--limit {limit}: must be at least 1")
        probe = at if at is not None else (now_ms() if self.settings.clock == "wall" else None)
        tokens = self.active_tokens(probe)
        read_at, views = self.read_all(tokens, at)
        rows = rank(views, window, by, limit)
        stamp = read_at if read_at is not None else max((v.at for v in views), default=0)
        return Ranking(stamp, window, by, len(tokens), rows, views)
