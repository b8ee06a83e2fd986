"""A full Redis is backpressure, not data loss (issue 10, item 2), with real processes.

A running ``tradeagg worker`` is handed entries at the instant Redis reaches
``maxmemory`` (noeviction): reads and XACK still work, every Lua apply is
refused. The worker must retry the same calls in place (the entries' delivery
count stays 1, nothing is dead-lettered), count each refusal in
``warnings.redis_oom``, warn at most once a minute, and, once memory is freed,
apply everything exactly and clear the warning by itself.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.bridge_procs import Proc, dead_letters, wait_for
from tests.support.fault_procs import (
    Feed,
    caught_up,
    mismatches,
    pending,
    settings_of,
    undelivered,
    worker_env,
)
from tests.support.servers import RedisServer
from tests.support.statsd_listener import StatsdListener
from tradeagg.contract import keys
from tradeagg.store import streams
from tradeagg.store.connection import connect
from tradeagg.store.stream import ShardStream

REFUSALS = 45  # retries back off 0.1 s doubling to 5 s: ~50 s of refusals on 3 shards


def deliveries(client, shards: int) -> list[int]:
    out = []
    for shard in range(shards):
        rows = client.xpending_range(keys.stream(shard), keys.STREAM_GROUP, "-", "+", 10_000)
        out.extend(int(r["times_delivered"]) for r in rows)
    return out


def test_worker_waits_out_a_full_redis_and_loses_nothing(tmp_path: Path):
    server = RedisServer(tmp_path)
    server.start()
    listener = StatsdListener()
    env = worker_env(
        server.url,
        TRADEAGG_WINDOWS="3s,5m",
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(listener.port),
        STATSD_PREFIX="ta",
        TRADEAGG_METRICS_INTERVAL="0.2",
    )
    s = settings_of(env)
    feed = Feed(seed=21, longest_ms=s.longest_ms)
    client = connect(s)
    worker = Proc("worker", env, tmp_path / "worker.log")
    try:
        client.config_set("maxmemory-policy", "noeviction")
        for _ in range(5):
            streams.append(client, s, feed.batch(30))
        wait_for(lambda: caught_up(client, s.shards), 60, "worker applying")
        # the entries and the limit arrive together: the worker reads them under OOM
        used = int(client.info("memory")["used_memory"])
        pipe = client.pipeline(transaction=True)
        held = feed.batch(120)
        for shard, chunks in streams.pack(held, s).items():
            for chunk in chunks:
                ShardStream(client, shard).add(chunk, "test", pipe)
        pipe.config_set("maxmemory", used // 2)
        pipe.execute()
        full_since = time.monotonic()
        wait_for(lambda: pending(client, s.shards) > 0, 30, "entries read under OOM")
        listener.wait_for(lambda: listener.counter("ta.batch.refused") >= REFUSALS, 120)
        assert worker.proc.poll() is None
        assert undelivered(client, s.shards) == 0 and pending(client, s.shards) > 0
        assert set(deliveries(client, s.shards)) == {1}  # retried in place, never re-read
        assert dead_letters(client, s.shards) == []
        oom_lines = worker.text().count('msg="warning" warning=redis_oom')
        assert 1 <= oom_lines <= 1 + (time.monotonic() - full_since) // 60  # one a minute
        assert "level=ERROR" not in worker.text()
        print(
            f"\nfull Redis for {time.monotonic() - full_since:.1f} s, worker retries: "
            f"{listener.counter('ta.batch.refused'):.0f}, refusals counted: "
            f"{listener.counter('ta.warnings.redis_oom'):.0f}"
        )
        client.config_set("maxmemory", 0)
        after = feed.batch(60)
        streams.append(client, s, after)
        wait_for(lambda: caught_up(client, s.shards), 60, "caught up after memory freed")
        wait_for(lambda: 'msg="warning cleared" warning=redis_oom' in worker.text(), 30, "cleared")
        assert worker.proc.poll() is None
        assert mismatches(client, s, list(feed.sent.values())) == []
        assert dead_letters(client, s.shards) == []
    finally:
        code = worker.terminate()
        listener.close()
        server.stop()
    assert code == 0
