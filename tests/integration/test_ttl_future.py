"""A future-stamped trade keeps its token alive until it leaves its window (issue 10, item 4).

TTL = longest window + max(0, newest ts - at): with the wall clock, a trade
stamped ahead (within the allowed skew) is still inside its windows after
``longest`` has passed since it was applied, so its keys must outlive that.
"""

from __future__ import annotations

import time

import redis

from tradeagg.clock import now_ms
from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"
AHEAD_MS = 3_000


def trade(ident: str, ts: int) -> Trade:
    return Trade(id=ident, token=A, side="buy", quote_nano=1_000_000_000, price="2", ts=ts)


def test_future_trade_outlives_the_longest_window(redis_client: redis.Redis) -> None:
    s = Settings(windows=parse_windows("1s,2s"), max_skew_ms=5_000)
    longest = s.longest_ms
    at = now_ms()
    [r] = Engine(redis_client, s).apply_records([trade("f", at + AHEAD_MS).record], now=at)
    assert r.applied == 1
    k = TokenKeys(A)
    for key in (k.trades, k.indices, k.aggregates, k.last_update, k.ids):
        assert longest + AHEAD_MS - 1_000 < redis_client.pttl(key) <= longest + AHEAD_MS, key
    # past the longest window after the apply, the trade is still in both windows
    inside = at + longest + 500
    while now_ms() < inside:  # the wall clock must pass that instant
        time.sleep(0.05)
    assert redis_client.exists(k.trades, k.aggregates, k.last_update) == 3
    view = Reader(redis_client, s).read(A, at + AHEAD_MS + 200)
    assert (view.windows["1s"].buys, view.windows["2s"].buys) == (1, 1)


def test_past_trade_keeps_the_plain_ttl(redis_client: redis.Redis) -> None:
    s = Settings(windows=parse_windows("1s,2s"))
    at = now_ms()
    Engine(redis_client, s).apply_records([trade("p", at - 100).record], now=at)
    assert s.longest_ms - 1_000 < redis_client.pttl(TokenKeys(A).trades) <= s.longest_ms
