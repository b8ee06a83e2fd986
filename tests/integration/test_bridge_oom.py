"""The bridge meets a full Redis (issue 10, item 2): it pauses, commits nothing, resumes.

A real ``tradeagg bridge`` on the Tansu broker writes to its own redis-server.
When Redis reaches ``maxmemory`` (noeviction) every XADD is refused: the
bridge must pause its partitions, count each refused attempt in
``warnings.redis_oom`` with one WARNING, commit no offset past what Redis
holds, and once memory is freed write everything and resume by itself.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.bridge_procs import (
    Proc,
    committed,
    dead_letters,
    env_for,
    produce,
    stream_records,
    trade_message,
    wait_for,
)
from tests.support.servers import RedisServer
from tests.support.statsd_listener import StatsdListener
from tradeagg.devtools.synthetic import SyntheticFeed

SHARDS = 4
PARTITIONS = 4
REFUSALS = 6  # backoff 0.1 s doubling: ~6 s of refused writes


def records(client) -> set[str]:
    return {r for _s, _e, r in stream_records(client, SHARDS)}


def test_bridge_pauses_on_a_full_redis_and_resumes(tmp_path: Path, kafka_broker, kafka_topic):
    server = RedisServer(tmp_path)
    server.start()
    client = server.client()
    listener = StatsdListener()
    env = env_for(
        server.url,
        kafka_broker.bootstrap,
        kafka_topic,
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(listener.port),
        STATSD_PREFIX="ta",
        TRADEAGG_METRICS_INTERVAL="0.2",
    )
    now = int(time.time() * 1000)
    trades = SyntheticFeed(tokens=20, seed=5).trades(400, now - 300_000, 50)
    first, second = trades[:200], trades[200:]
    bridge = Proc("bridge", env, tmp_path / "bridge.log")
    try:
        ends = produce(kafka_broker.bootstrap, kafka_topic, [trade_message(t) for t in first])
        wait_for(lambda: records(client) >= {t.record for t in first}, what="first batch")
        wait_for(
            lambda: (
                committed(kafka_broker.bootstrap, kafka_topic, kafka_topic, PARTITIONS)
                == {p: ends.get(p, -1001) for p in range(PARTITIONS)}
            ),
            what="first batch committed",
        )
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
        produce(kafka_broker.bootstrap, kafka_topic, [trade_message(t) for t in second])
        listener.wait_for(lambda: listener.counter("ta.warnings.redis_oom") >= REFUSALS, 60)
        wait_for(lambda: "partitions paused" in bridge.text(), what="partitions paused")
        assert bridge.proc.poll() is None
        assert committed(kafka_broker.bootstrap, kafka_topic, kafka_topic, PARTITIONS) == {
            p: ends.get(p, -1001) for p in range(PARTITIONS)
        }  # nothing committed past what Redis holds
        assert not records(client) & {t.record for t in second}
        log = bridge.text()
        assert log.count('msg="warning" warning=redis_oom') == 1 and "level=ERROR" not in log
        client.config_set("maxmemory", 0)
        wait_for(lambda: records(client) >= {t.record for t in trades}, what="second batch")
        wait_for(lambda: "partitions resumed" in bridge.text(), what="partitions resumed")
        wait_for(lambda: 'msg="warning cleared" warning=redis_oom' in bridge.text(), what="cleared")
        more = SyntheticFeed(tokens=20, seed=6).trades(50, now - 1_000, 50)
        produce(kafka_broker.bootstrap, kafka_topic, [trade_message(t) for t in more])
        wait_for(lambda: records(client) >= {t.record for t in more}, what="flowing again")
        assert dead_letters(client, SHARDS) == []
        assert bridge.terminate(timeout=30) == 0
    finally:
        bridge.kill()
        listener.close()
        server.stop()
