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
