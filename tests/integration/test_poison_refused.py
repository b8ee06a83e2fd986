"""A poison entry is acked only once its dead letter is stored (issue 10, item 2).

With Redis at ``maxmemory`` the dead-letter XADD is refused while XACK would
still work: the entry must stay pending (not acked, not lost), the refusal
must be retried in place, and once memory is freed the dead letter is stored
and only then the entry acknowledged.
"""

from __future__ import annotations

from pathlib import Path

import gevent.pool

from tests.support.servers import RedisServer
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine, now_ms
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.runtime.consumer import ShardConsumer
from tradeagg.settings import Settings
from tradeagg.store import streams

A = "So11111111111111111111111111111111111111112"


def test_refused_dead_letter_leaves_the_poison_entry_pending(tmp_path: Path):
    server = RedisServer(tmp_path)
    server.start()
    client = server.client()
    try:
        s = Settings(shards=1, max_deliveries=1)
        trade = Trade(id="p", token=A, side="buy", quote_nano=1, price="1", ts=now_ms())
        (entry_id,) = streams.append(client, s, [trade])
        stream = keys.stream(0)
        client.xgroup_create(stream, keys.STREAM_GROUP, id="0")
        client.xreadgroup(keys.STREAM_GROUP, "c", {stream: ">"})
        [(_s, entries)] = client.xreadgroup(keys.STREAM_GROUP, "c", {stream: "0"})
        assert (
            client.xpending_range(stream, keys.STREAM_GROUP, "-", "+", 1)[0]["times_delivered"] == 2
        )  # over max_deliveries: poison

        metrics = MemoryMetrics()
        refusals = 4

        def give_up() -> bool:
            return metrics.counters.get("batch.refused", 0) >= refusals

        pool = gevent.pool.Pool(2)
        sc = ShardConsumer(0, client, Engine(client, s), pool, s, metrics, "c", give_up)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
        assert sc.screen(entries) == []
        assert metrics.counters["batch.refused"] == refusals  # retried in place
        assert client.xlen(keys.dead(0)) == 0
        assert client.xpending(stream, keys.STREAM_GROUP)["pending"] == 1  # not acked
        assert metrics.counters.get("entries.poison", 0) == 0

        client.config_set("maxmemory", 0)
        sc.stopping = lambda: False
        assert sc.screen(entries) == []
        [(_id, fields)] = client.xrange(keys.dead(0))
        assert fields[b"entry"].decode() == entry_id and trade.record in fields[b"raw"].decode()
        assert client.xpending(stream, keys.STREAM_GROUP)["pending"] == 0
        assert metrics.counters["entries.poison"] == 1
    finally:
        server.stop()
