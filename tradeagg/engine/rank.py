"""The trending list: every active token read exactly as of one instant, then ranked.

No key scan: the engine stamps each token it applies in its shard's sorted set
``tradeagg:{sN}:active`` (score = wall ms of the apply), so the candidates are
the members of ``settings.shards`` small sets. Each candidate is read with
``Reader.read_many`` (the same exact read as ``show``, pipelined in batches, so
that a few thousand tokens cost a few round trips, not thousands).

With the wall clock and no explicit ``at``, a worker may apply a trade to a
token between our choice of "now" and our read of it; that token then answers
"past". We read again as of an instant a little ahead (the newest such
``last_update`` plus twice the time a pass took), so that every token is read
as of one single instant even while workers keep applying; the answer then
covers the trades applied when each token was read, as any read does. A
caller that ranks again and again (the SSE hub) aims its first read ahead by
twice its last pass (``ahead_ms``) for a while after a catch-up
(``catch_ups`` counts them), so that under a steady load a pass is read once
and at rest still as of now.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import redis

from tradeagg.clock import now_ms
from tradeagg.contract.keys import active
from tradeagg.engine.args import check_at, check_choice, check_limit, check_window
from tradeagg.engine.read import Reader, TokenView, WindowView
from tradeagg.errors import PastInstant, StoreError
from tradeagg.settings import Settings
from tradeagg.store.connection import text

RANK_BY = (
    "volume",
    "buys",
    "sells",
    "price_change_pct",
    "trades",
    "makers",
    "buyers",
    "sellers",
    "volume_change_pct",
)
SCREENER_BY = ("makers", "buyers", "sellers")  # only with TRADEAGG_METRICS=full
PREV_BY = ("volume_change_pct",)  # only with the previous windows (Settings.prev_metrics)
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
    min_volume: Decimal = Decimal(0)  # tokens with less volume in the window were left out


def metric(w: WindowView, by: str) -> Decimal | int | float | None:
    """The value ``top --by`` ranks on; None means "not ranked" (no trade in the window)."""
    if w.trades == 0:
        return None
    if by == "trades":
        return w.trades
    return getattr(w, by)


def rank(
    views: Iterable[TokenView],
    window: str,
    by: str,
    limit: int | None,
    min_volume: Decimal = Decimal(0),
) -> list[Ranked]:
    """Descending by the metric, ties by token address ascending; tokens without trades out,
    and tokens whose window volume is below ``min_volume`` (so that one tiny trade does not
    top a ``%`` ranking)."""
    scored = []
    for v in views:
        w = v.windows[window]
        value = metric(w, by)
        if value is not None and w.volume >= min_volume:
            scored.append((value, v))
    scored.sort(key=lambda s: s[1].token)
    scored.sort(key=lambda s: s[0], reverse=True)  # stable: equal values keep address order
    top = scored if limit is None else scored[:limit]
    return [Ranked(i + 1, v.token, v) for i, (_, v) in enumerate(top)]


class Ranker:
    """Reads every active token as of one instant and ranks them."""

    def __init__(self, client: Any, settings: Settings, reader: Reader | None = None) -> None:
        self.client = client
        self.settings = settings
        self.reader = reader or Reader(client, settings)
        self.catch_ups = 0  # reads made again, further ahead, because a token moved past

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

    def read_all(
        self, tokens: Sequence[str], at: int | None, ahead_ms: int = 0
    ) -> tuple[int | None, list[TokenView]]:
        """Views of ``tokens`` as of one common ``at`` (see the module doc for the catch-up).

        Without ``at``, ``ahead_ms`` aims the first read that far ahead of now: a caller
        that knows how long such a read takes (the SSE hub's repeated pass) so avoids
        reading every token twice whenever one moves during the read.
        """
        explicit = at is not None
        if at is None and self.settings.clock == "wall":
            at = now_ms() + max(0, ahead_ms)
        for _ in range(CATCH_UP_TRIES):
            started = time.monotonic()
            try:
                return at, self.reader.read_many(tokens, at)
            except PastInstant as exc:
                if explicit:
                    raise
                # tokens move while we read them: aim ahead by twice what a pass takes
                self.catch_ups += 1
                ahead = int(2_000 * (time.monotonic() - started)) + 1
                at = max(exc.newest, now_ms()) + ahead
        raise StoreError(f"tokens kept updating past at={at}; try again, or rank as of an instant")

    def top(
        self,
        window: str,
        by: str = "volume",
        limit: int | None = 20,
        at: int | None = None,
        ahead_ms: int = 0,
        min_volume: Decimal = Decimal(0),
    ) -> Ranking:
        """The trending list: ``limit`` tokens by ``by`` in ``window`` as of ``at`` (default now),
        among those with at least ``min_volume`` of volume in ``window``."""
        check_window(self.settings, window)
        kept = tuple(
            b
            for b in RANK_BY
            if (b not in SCREENER_BY or self.settings.metrics == "full")
            and (b not in PREV_BY or self.settings.prev_metrics)
        )
        check_choice("by", by, kept)
        check_limit(limit)
        check_at(at)
        probe = at if at is not None else (now_ms() if self.settings.clock == "wall" else None)
        tokens = self.active_tokens(probe)
        read_at, views = self.read_all(tokens, at, ahead_ms)
        rows = rank(views, window, by, limit, min_volume)
        stamp = read_at if read_at is not None else max((v.at for v in views), default=0)
        return Ranking(stamp, window, by, len(tokens), rows, views, min_volume)


def default_window(settings: Settings) -> str:
    """5m when configured, else the shortest window longer than a minute, else the longest."""
    labels = [w.label for w in settings.windows]
    if "5m" in labels:
        return "5m"
    longer = [w.label for w in settings.windows if w.ms > 60_000]
    return longer[0] if longer else labels[-1]
