"""The consumer acts on the script's structured result: a trade the script
refuses (its own checks, e.g. a quote above 1e9 units) is logged and counted,
the rest of the batch applied and acknowledged."""

from __future__ import annotations

import logging
import threading

import gevent.pool
import redis

from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine, now_ms
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.runtime.consumer import ShardConsumer
from tradeagg.settings import Settings, parse_windows
from tradeagg.store import streams

TOKEN = "So11111111111111111111111111111111111111112"
S = Settings(windows=parse_windows("10s,1m"), shards=1)


def test_a_trade_the_script_refuses_is_logged_and_counted(redis_client: redis.Redis, caplog):
    t = now_ms() - 1_000
    good = Trade("good", TOKEN, "buy", 2_000_000_000, "1.5", t)
    huge = Trade("huge", TOKEN, "buy", 10**18 + 1, "1.5", t + 1)  # above 1e9 quote units
    streams.append(redis_client, S, [good, huge])
    redis_client.xgroup_create(keys.stream(0), keys.STREAM_GROUP, id="0")
    resp = redis_client.xreadgroup(keys.STREAM_GROUP, "c", {keys.stream(0): ">"})
    metrics = MemoryMetrics()
    stop = threading.Event()
    engine = Engine(redis_client, S)
    sc = ShardConsumer(0, None, engine, gevent.pool.Pool(2), S, metrics, "c", stop.is_set)
    with caplog.at_level(logging.WARNING):
        assert sc.process(resp[0][1]) == 0  # nothing left pending: a retry cannot help
    assert metrics.counters["trades.unparsable"] == 1
    assert metrics.counters["trades.applied"] == 1
    lines = [r.getMessage() for r in caplog.records if "refused by the engine" in r.getMessage()]
    assert len(lines) == 1 and f"token={TOKEN}" in lines[0] and "trades=1" in lines[0]


def test_each_call_is_announced_as_soon_as_it_commits(redis_client: redis.Redis) -> None:
    """The change feed hears of a call's tokens when that call returns, not after the
    batch's slowest call (which held a token's announcement back by the whole batch)."""
    import gevent.event

    s = Settings(windows=parse_windows("10s,1m"), shards=1, tokens_per_call=1)
    other = "B" * 44
    t = now_ms() - 1_000
    trades = [Trade("a", TOKEN, "buy", 10**9, "1.5", t), Trade("b", other, "sell", 10**9, "2", t)]
    streams.append(redis_client, s, trades)
    redis_client.xgroup_create(keys.stream(0), keys.STREAM_GROUP, id="0")
    resp = redis_client.xreadgroup(keys.STREAM_GROUP, "c", {keys.stream(0): ">"})
    told: list[list[str]] = []
    first = gevent.event.Event()

    def on_applied(results) -> None:
        told.append([r.token for r in results])
        first.set()

    engine = Engine(redis_client, s)
    real = engine.apply_call

    def apply_call(call):  # the other token's call ends only once TOKEN's was announced
        if call[0][0] == other:
            assert first.wait(10), "TOKEN's call was not announced before the batch ended"
        return real(call)

    engine.apply_call = apply_call
    stop = threading.Event()
    sc = ShardConsumer(
        0, None, engine, gevent.pool.Pool(2), s, MemoryMetrics(), "c", stop.is_set,
        on_applied=on_applied,
    )
    assert sc.process(resp[0][1]) == 0
    assert told == [[TOKEN], [other]]
