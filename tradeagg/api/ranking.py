"""A ranking that reads exactly only the tokens that may be in it (the hub's bounded pass).

``Ranker.top`` reads every active token with ``read_window.lua`` (3,000 tokens:
3,000 script calls of 0.1-0.4 ms of Redis each, every pass), which holds up
the workers' applies and the hub's reads. For the metrics that only fall as
time passes with no new trade (counts, volumes, distinct traders: a window
only loses trades when no trade is applied) a token's stored aggregates,
written as of its ``last_update``, bound its value at any later instant from
above. So the bounded pass reads, per active token, the stored field, the
``last_update`` and the newest list entry (plain commands, a few µs of Redis
each), and reads exactly, as of one instant, the tokens in order of their
bound until the ``limit``-th exact value beats every bound left. Its rows are
those of ``Ranker.top`` as of that instant, given the state each token had
when its bound was read (as any read covers the trades applied when it read).

A token's stored value is no bound when the window is partial (its
``complete_from`` is stored), when nothing is stored, or when its newest list
entry lies after its ``last_update`` (a trade up to TRADEAGG_MAX_SKEW_MS ahead
enters the windows later): such a token is read exactly whatever its bound.
``price_change_pct`` has no such bound: ``bounded`` says which ``by`` qualify.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import redis

from tradeagg.api.pipelines import fetch_split
from tradeagg.clock import now_ms
from tradeagg.contract.entry import sort_key
from tradeagg.contract.keys import TokenKeys
from tradeagg.engine.args import check_at, check_choice, check_limit, check_window
from tradeagg.engine.rank import RANK_BY, SCREENER_BY, Ranker, Ranking, metric, rank
from tradeagg.engine.read import TokenView
from tradeagg.errors import PastInstant, StoreError
from tradeagg.store.connection import text

BOUNDED_BY = ("volume", "buys", "sells", "trades", "makers", "buyers", "sellers")
FIRST_READ = 20  # exact reads beyond the limit in the first round; each round doubles it
BOUND_BATCH = 500  # tokens per pipeline of bound reads
TRIES = 5
INF = Decimal("Infinity")


def bounded(by: str) -> bool:
    return by in BOUNDED_BY


def fields(window: str, by: str) -> list[str]:
    """The aggregates fields a bound of ``by`` in ``window`` is made of (then complete_from)."""
    if by == "trades":
        names = ["buys", "sells"]
    elif by in ("buys", "sells"):
        names = [by]
    else:
        names = [by, "buys", "sells"]  # an empty window has no value (not ranked)
    return [f"{window}:{n}" for n in names] + [f"{window}:complete_from"]


def bound_of(by: str, values: list[Any], last_update: Any, newest: Any) -> Decimal | None:
    """The stored upper bound of ``by`` (None: the window holds no trade, so it never
    ranks), or infinity when the stored state bounds nothing (see the module doc)."""
    if last_update is None or newest is None or values[-1] is not None:
        return INF
    if any(v is None for v in values[:-1]):
        return INF
    try:
        ts = sort_key(text(newest))[0]  # decimal or compact (base 36) elements alike
    except ValueError:  # a damaged element: the exact read says what it holds
        return INF
    if ts > int(text(last_update)):
        return INF
    if by == "trades":
        n = int(values[0]) + int(values[1])
        return Decimal(n) if n else None
    if by in ("buys", "sells"):
        n = int(values[0])
        return Decimal(n) if n else None
    if int(values[1]) + int(values[2]) == 0:
        return None
    return Decimal(text(values[0]))


class BoundedRanker:
    """``Ranker.top`` for one (window, by) of ``BOUNDED_BY``, reading few tokens exactly."""

    def __init__(self, ranker: Ranker) -> None:
        self.ranker = ranker
        self.client = ranker.client
        self.settings = ranker.settings
        self.reads = 0  # exact reads made (tokens), for tests and figures
        self.catch_ups = 0  # passes begun again because a token moved past their instant

    def bounds(self, tokens: Sequence[str], window: str, by: str) -> list[Decimal | None]:
        """Each token's stored bound (``bound_of``), pipelined in parts sent at once."""
        return fetch_split(lambda part: self._bounds(part, window, by), tokens)

    def _bounds(self, tokens: Sequence[str], window: str, by: str) -> list[Decimal | None]:
        names = fields(window, by)
        out: list[Decimal | None] = []
        try:
            for i in range(0, len(tokens), BOUND_BATCH):
                pipe = self.client.pipeline(transaction=False)
                for token in tokens[i : i + BOUND_BATCH]:
                    k = TokenKeys(token)
                    pipe.hmget(k.aggregates, names)
                    pipe.get(k.last_update)
                    pipe.lindex(k.trades, -1)
                got = pipe.execute()
                for j in range(0, len(got), 3):
                    out.append(bound_of(by, got[j], got[j + 1], got[j + 2]))
        except redis.RedisError as exc:
            raise StoreError(f"reading the ranking's bounds failed: {exc}") from None
        return out

    def top(
        self, window: str, by: str, limit: int, at: int | None = None, ahead_ms: int = 0
    ) -> Ranking:
        """The first ``limit`` rows of ``Ranker.top(window, by, limit, at)``; ``ahead_ms``
        aims a pass without ``at`` that far ahead of now (see ``Ranker.read_all``)."""
        check_window(self.settings, window)
        check_limit(limit)
        check_at(at)
        kept = RANK_BY if self.settings.metrics == "full" else RANK_BY[: -len(SCREENER_BY)]
        check_choice("by", by, kept)
        if not bounded(by):
            raise ValueError(f"no stored bound for by={by!r}")
        explicit = at is not None
        ahead = max(0, ahead_ms)
        for _ in range(TRIES):
            started = time.monotonic()
            read_at = at if explicit else now_ms() + ahead
            tokens = self.ranker.active_tokens(read_at)
            try:
                views = self._read(tokens, window, by, limit, read_at)
            except PastInstant as exc:
                if explicit:
                    raise
                self.catch_ups += 1
                ahead = int(2_000 * (time.monotonic() - started)) + 1
                ahead += max(0, exc.newest - now_ms())
                continue
            return Ranking(read_at, window, by, len(tokens), rank(views, window, by, limit), views)
        raise StoreError("tokens kept updating past the ranking's instant; try again")

    def _read(
        self, tokens: list[str], window: str, by: str, limit: int, at: int
    ) -> list[TokenView]:
        """Exact views as of ``at`` of the tokens in order of their bound, until no bound
        left can reach the ``limit``-th exact value (ties: the lower address first)."""
        order = sorted(
            ((b, t) for b, t in zip(self.bounds(tokens, window, by), tokens, strict=True)
             if b is not None),
            key=lambda bt: (-bt[0], bt[1]),
        )
        views: list[TokenView] = []
        exact: list[tuple[Any, str]] = []
        done, step = 0, limit + FIRST_READ
        while done < len(order):
            batch = [t for _, t in order[done : done + step]]
            done += len(batch)
            step *= 2
            got = self.ranker.reader.read_many(batch, at)
            self.reads += len(got)
            views.extend(got)
            for v in got:
                value = metric(v.windows[window], by)
                if value is not None:
                    exact.append((value, v.token))
            if len(exact) >= limit and done < len(order):
                exact.sort(key=lambda e: (-e[0], e[1]))
                kth = exact[limit - 1][0]
                if order[done][0] < kth and not math.isinf(order[done][0]):
                    break
        return views
