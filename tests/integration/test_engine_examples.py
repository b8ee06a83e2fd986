"""One example per contract sentence the properties cannot see or may miss.

Each test applies a few hand-written trades through the real engine
(``apply_trades.lua`` on our own redis-server) and checks one rule of
CONTRACT.md §1-§3 with literal expectations.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import gevent.pool
import pytest
import redis

from tests.support.checks import window_mismatches
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.runtime.consumer import ShardConsumer
from tradeagg.settings import Settings, parse_windows

TOKEN = "So11111111111111111111111111111111111111112"
K = keys.TokenKeys(TOKEN)
T0 = 1_700_000_000_000


def trade(ident: str, ts: int, seq: int = 0, price: str = "1", quote_nano: int = 10**9) -> Trade:
    return Trade(
        id=ident, token=TOKEN, side="buy", quote_nano=quote_nano, price=price, ts=ts, seq=seq
    )


def apply(engine: Engine, trades: list[Trade], now: int):
    [result] = engine.apply_records([t.record for t in trades], now=now)
    assert not result.failed, result
    return result


def test_late_trades_are_counted_and_not_applied(redis_client: redis.Redis) -> None:
    """§1: a trade older than the longest window when it arrives is late: counted, not applied."""
    s = Settings(windows=parse_windows("10s,1m"))
    engine = Engine(redis_client, s)
    now = T0 + 100_000
    cutoff = now - 60_000  # ts <= now - longest: outside every window at now and after
    r = apply(engine, [trade("late", cutoff, price="9"), trade("in", cutoff + 1, price="2")], now)
    assert (r.applied, r.duplicates, r.late) == (1, 0, 1)
    assert redis_client.llen(K.trades) == 1
    w = Reader(redis_client, s, engine.scripts).read(TOKEN, now).windows["1m"]
    assert (w.buys, w.volume, w.open, w.close) == (1, Decimal(1), Decimal(2), Decimal(2))
    # late again in a later call, even though it was never applied
    r = apply(engine, [trade("late", cutoff, price="9")], now + 1)
    assert (r.applied, r.duplicates, r.late) == (0, 0, 1)


def test_order_ties_on_ts_are_broken_by_seq_across_calls(redis_client: redis.Redis) -> None:
    """§2: trades are ordered by (ts, seq, id), also when the earlier one came in a later call."""
    s = Settings(windows=parse_windows("1m"))
    engine = Engine(redis_client, s)
    apply(engine, [trade("a", 1000, seq=2, price="5")], now=2000)
    apply(engine, [trade("b", 1000, seq=0, price="7")], now=2001)
    w = Reader(redis_client, s, engine.scripts).read(TOKEN, 2001).windows["1m"]
    assert (w.open, w.close) == (Decimal(7), Decimal(5))
    assert w.price_change_pct == pytest.approx(-200 / 7, rel=1e-12)


def test_order_ties_on_ts_and_seq_are_broken_by_id_bytes_across_calls(
    redis_client: redis.Redis,
) -> None:
    """§2: with equal (ts, seq) the id orders, bytewise: "B" (0x42) comes before "a" (0x61)."""
    s = Settings(windows=parse_windows("1m"))
    engine = Engine(redis_client, s)
    apply(engine, [trade("a", 1000, seq=1, price="5")], now=2000)
    apply(engine, [trade("B", 1000, seq=1, price="7")], now=2001)
    apply(engine, [trade("a0", 1000, seq=1, price="3")], now=2002)  # a prefix sorts first
    w = Reader(redis_client, s, engine.scripts).read(TOKEN, 2002).windows["1m"]
    assert (w.open, w.close) == (Decimal(7), Decimal(3))
    assert [e.split()[5] for e in map(bytes.decode, redis_client.lrange(K.trades, 0, -1))] == [
        "B",
        "a",
        "a0",
    ]


def test_ttl_is_the_longest_window_and_refreshed_by_each_trade(redis_client: redis.Redis) -> None:
    """§3: the keys expire after the longest window with no trade; a trade refreshes them."""
    s = Settings(windows=parse_windows("1m,1h"))
    engine = Engine(redis_client, s)
    now = T0
    apply(engine, [trade("a", now - 10)], now)
    token_keys = [*K.all(), K.ids]
    for key in token_keys:
        assert 3_600_000 - 60_000 < redis_client.pttl(key) <= 3_600_000, key
    for key in token_keys:  # as if most of the hour had passed without a trade
        redis_client.pexpire(key, 5_000)
    engine.advance([TOKEN], now + 1)  # sliding the windows is not a trade: no refresh
    for key in token_keys:
        assert 0 < redis_client.pttl(key) <= 5_000, key
    r = apply(engine, [trade("b", now + 2)], now + 2)
    assert r.applied == 1
    for key in token_keys:
        assert 3_600_000 - 60_000 < redis_client.pttl(key) <= 3_600_000, key


def test_max_token_trades_refuses_and_counts_the_excess(redis_client: redis.Redis) -> None:
    """TRADEAGG_MAX_TOKEN_TRADES caps a token's list; the excess is refused and counted."""
    s = Settings.from_env({"TRADEAGG_MAX_TOKEN_TRADES": "1000", "TRADEAGG_WINDOWS": "1m"})
    assert s.max_token_trades == 1000
    engine = Engine(redis_client, s)
    now = T0 + 60_000
    first = [trade(f"t{i}", now - 50_000 + i) for i in range(990)]
    assert apply(engine, first, now).applied == 990
    r = apply(engine, [trade(f"u{i}", now - 1_000 + i) for i in range(15)], now)
    assert (r.applied, r.over_capacity, r.duplicates, r.late) == (10, 5, 0, 0)
    assert redis_client.llen(K.trades) == 1000
    w = Reader(redis_client, s, engine.scripts).read(TOKEN, now).windows["1m"]
    assert (w.buys, w.volume) == (1000, Decimal(1000))
    # once the oldest left the window (and the list was trimmed), there is room again
    later = now + 10_019  # the first 20 trades (ts <= later - 60_000) have left
    engine.advance([TOKEN], later)
    assert redis_client.llen(K.trades) == 980
    r = apply(engine, [trade(f"v{i}", later - 25 + i) for i in range(25)], later)
    assert (r.applied, r.over_capacity) == (20, 5)
    assert redis_client.llen(K.trades) == 1000


def test_dead_letter_stream_is_capped(redis_client: redis.Redis) -> None:
    """TRADEAGG_DEAD_LETTER_MAX caps tradeagg:{sN}:dead (approximate MAXLEN: whole nodes).

    1,000 malformed entries are dead-lettered with a cap of 10: the stream keeps
    the newest and stays below the cap plus one stream node; every entry is acked.
    """
    s = Settings.from_env({"TRADEAGG_DEAD_LETTER_MAX": "10", "TRADEAGG_SHARDS": "1"})
    stream, dead = keys.stream(0), keys.dead(0)
    redis_client.xgroup_create(stream, keys.STREAM_GROUP, id="0", mkstream=True)
    ids = [
        redis_client.xadd(stream, {"v": "1", "t": f"not-a-token {i} 0 b 1 2 x{i}"})
        for i in range(1_000)
    ]
    [(_name, entries)] = redis_client.xreadgroup(keys.STREAM_GROUP, "c", {stream: ">"}, count=1_000)
    stop = threading.Event()
    engine = Engine(redis_client, s)
    consumer = ShardConsumer(
        0, None, engine, gevent.pool.Pool(2), s, MemoryMetrics(), "c", stop.is_set
    )
    assert consumer.process(entries) == 0
    node = int(redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"])
    assert 10 <= redis_client.xlen(dead) < 10 + node
    [(_last_id, last)] = redis_client.xrevrange(dead, count=1)
    assert last[b"entry"] == ids[-1] and b"x999" in last[b"raw"]
    assert redis_client.xpending(stream, keys.STREAM_GROUP)["pending"] == 0


def test_an_emptied_window_matches_the_reference_on_every_metric(redis_client: redis.Redis) -> None:
    """§2: at exactly ts + w a trade has left window w (at - w < ts <= at)."""
    s = Settings(windows=parse_windows("1s,1m"))
    engine = Engine(redis_client, s)
    apply(engine, [trade("a", T0, price="4")], T0)
    w = Reader(redis_client, s, engine.scripts).read(TOKEN, T0 + 1_000).windows
    empty = {m: 0 for m in ("buys", "sells")} | {
        "buy_volume": 0,
        "sell_volume": 0,
        "volume": 0,
        "open": None,
        "close": None,
        "price_change_pct": None,
        "makers": 0,
        "buyers": 0,
        "sellers": 0,
        "high": None,
        "low": None,
    }
    assert window_mismatches(w["1s"], empty) == []
    assert (w["1m"].buys, w["1m"].open) == (1, Decimal(4))
    w = Reader(redis_client, s, engine.scripts).read(TOKEN, T0 + 999).windows
    assert (w["1s"].buys, w["1s"].close) == (1, Decimal(4))


def test_an_id_seen_again_with_another_ts_is_a_duplicate(redis_client: redis.Redis) -> None:
    """§1: the same id is one trade; the first applied stays, whatever the second says."""
    s = Settings(windows=parse_windows("1m"))
    engine = Engine(redis_client, s)
    apply(engine, [trade("x", 1000, price="5")], now=2000)
    r = apply(engine, [trade("x", 1500, seq=3, price="9", quote_nano=7 * 10**9)], now=2001)
    assert (r.applied, r.duplicates, r.late) == (0, 1, 0)
    w = Reader(redis_client, s, engine.scripts).read(TOKEN, 2001).windows["1m"]
    assert (w.buys, w.volume, w.open, w.close) == (1, Decimal(1), Decimal(5), Decimal(5))
