"""Probes and warnings against a real redis-server, driven in process one round at a time."""

from __future__ import annotations

import json
import logging
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.servers import free_port
from tradeagg.contract import keys
from tradeagg.observe import probes
from tradeagg.observe.heartbeat import LoopProbe, Observer
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.settings import Settings
from tradeagg.store.connection import connect


def settings_for(url: str, **env: str) -> Settings:
    base = {"REDIS_URL": url, "TRADEAGG_SHARDS": "2", "TRADEAGG_HEARTBEAT_INTERVAL": "1"}
    return Settings.from_env({**base, **env})


def observer(client, settings: Settings, metrics: MemoryMetrics, **kw) -> Observer:
    return Observer(client, settings, metrics, "worker", "w1", LoopProbe(**kw))


def warnings_of(caplog, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if f"warning={name} " in r.getMessage() and r.levelno == logging.WARNING
    ]


def cleared_of(caplog, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(f"warning cleared warning={name} ")
    ]


def test_an_empty_deployment_reads_zero_and_writes_a_heartbeat(redis_server, redis_client):
    s = settings_for(redis_server.url)
    m = MemoryMetrics()
    beat = observer(redis_client, s, m).tick()
    assert m.gauges["stream.backlog.s0"] == 0 and m.gauges["stream.pending.s1"] == 0
    assert m.gauges["tokens.active"] == 0 and m.gauges["deadletters.stored"] == 0
    assert m.gauges["redis.memory.used"] > 0
    assert "redis.memory.pct" not in m.gauges  # no maxmemory: no percentage
    assert not any(n.startswith("warnings.") for n in m.counters)
    raw = redis_client.get(keys.heartbeat("worker", "w1"))
    stored = json.loads(raw)
    assert stored["kind"] == "worker" and stored["name"] == "w1" and stored["backlog"] == 0
    assert 0 < redis_client.pttl(keys.heartbeat("worker", "w1")) <= 3000
    assert beat["at"] == stored["at"]
    assert [b["name"] for b in probes.heartbeats(redis_client)] == ["w1"]
    assert probes.heartbeats(redis_client, "bridge") == []


def test_backlog_and_pending_age_warn_then_clear(redis_server, redis_client, caplog):
    caplog.set_level(logging.INFO, logger="tradeagg.observe")
    s = settings_for(redis_server.url, TRADEAGG_WARN_BACKLOG="3", TRADEAGG_WARN_PENDING_AGE_MS="50")
    m = MemoryMetrics()
    obs = observer(redis_client, s, m)
    stream = keys.stream(1)
    for i in range(5):
        redis_client.xadd(stream, {"v": "1", "t": f"x{i}"})
    obs.tick()  # no group yet: everything is backlog
    assert m.gauges["stream.backlog.s1"] == 5
    assert warnings_of(caplog, "backlog") == [
        "warning warning=backlog on_for_s=0 shards=s1:5 backlog=5 threshold=3"
    ]
    redis_client.xgroup_create(stream, keys.STREAM_GROUP, id="0")
    redis_client.xreadgroup(keys.STREAM_GROUP, "c1", {stream: ">"}, count=3)
    obs.tick()
    assert (m.gauges["stream.backlog.s1"], m.gauges["stream.pending.s1"]) == (2, 3)
    assert cleared_of(caplog, "backlog")
    deadline = time.monotonic() + 10
    while not warnings_of(caplog, "pending_age"):  # the entries idle past 50 ms
        assert time.monotonic() < deadline, "pending age never warned"
        time.sleep(0.02)
        obs.tick()
    assert m.gauges["stream.pending_age_ms.s1"] > 50
    assert "shard=1" in warnings_of(caplog, "pending_age")[0]
    ids = [i for i, _ in redis_client.xrange(stream)][:3]
    redis_client.xack(stream, keys.STREAM_GROUP, *ids)
    obs.tick()
    assert m.gauges["stream.pending.s1"] == 0 and m.gauges["stream.pending_age_ms.s1"] == 0
    assert cleared_of(caplog, "pending_age")
    assert m.counters["warnings.backlog"] == 1


def test_active_tokens_and_dead_letters_are_counted(redis_server, redis_client):
    s = settings_for(redis_server.url)
    redis_client.zadd(keys.active(0), {"A": 1, "B": 2})
    redis_client.zadd(keys.active(1), {"C": 1})
    redis_client.xadd(keys.dead(1), {"reason": "x"})
    m = MemoryMetrics()
    observer(redis_client, s, m).tick()
    assert m.gauges["tokens.active"] == 3 and m.gauges["deadletters.stored"] == 1
    figures = probes.shard_figures(redis_client, s)
    assert [(f.active, f.dead) for f in figures] == [(2, 0), (1, 1)]


def test_memory_warns_against_maxmemory_and_clears(redis_server, redis_client, caplog):
    caplog.set_level(logging.INFO, logger="tradeagg.observe")
    s = settings_for(redis_server.url, TRADEAGG_WARN_MEMORY_PCT="80")
    m = MemoryMetrics()
    obs = observer(redis_client, s, m)
    used = int(redis_client.info("memory")["used_memory"])
    try:
        redis_client.config_set("maxmemory", str(int(used * 1.1)))
        obs.tick()
        assert m.gauges["redis.memory.pct"] >= 80
        assert len(warnings_of(caplog, "memory")) == 1
        redis_client.config_set("maxmemory", str(used * 100))
        obs.tick()
        assert m.gauges["redis.memory.pct"] < 80
        assert cleared_of(caplog, "memory")
    finally:
        redis_client.config_set("maxmemory", "0")


def test_pool_utilisation_is_averaged_and_warns(redis_server, redis_client, caplog):
    caplog.set_level(logging.INFO, logger="tradeagg.observe")
    s = settings_for(redis_server.url, TRADEAGG_WARN_POOL_PCT="90", TRADEAGG_PROCESS_NAME="w.9")
    m = MemoryMetrics()
    busy = [1.0]
    obs = observer(redis_client, s, m, pool_utilisation=lambda: busy[0])
    obs.tick()
    assert m.gauges["pool.utilisation.w_9"] == 100.0
    assert len(warnings_of(caplog, "pool")) == 1
    busy[0] = 0.25
    obs.tick()
    assert m.gauges["pool.utilisation.w_9"] == 25.0
    assert cleared_of(caplog, "pool")


def test_redis_down_warns_instead_of_crashing(redis_server, caplog):
    caplog.set_level(logging.INFO, logger="tradeagg.observe")
    no_retry = Retry(NoBackoff(), 0)
    dead = redis.Redis(host="127.0.0.1", port=free_port(), retry=no_retry)
    m = MemoryMetrics()
    observer(dead, settings_for(redis_server.url), m).tick()
    assert len(warnings_of(caplog, "redis")) == 1
    assert m.counters["warnings.redis"] == 1


@pytest.mark.parametrize("bad", [b"not json", b"[1]"])
def test_a_corrupt_heartbeat_still_shows(redis_client, bad):
    redis_client.set(keys.heartbeat("bridge", "b:1"), bad)
    beats = probes.heartbeats(redis_client)
    assert [(b["kind"], b["name"], b.get("corrupt")) for b in beats] == [("bridge", "b:1", True)]


def test_probes_and_heartbeats_on_a_cluster(redis_cluster, cluster_client, caplog):
    caplog.set_level(logging.INFO, logger="tradeagg.observe")
    s = Settings(
        redis_url=redis_cluster.url,
        redis_cluster=True,
        shards=4,
        warn_backlog=2,
        heartbeat_interval=1,
    )
    client = connect(s)
    try:
        for shard in range(4):  # the shard streams spread over the nodes
            for i in range(shard):
                client.xadd(keys.stream(shard), {"v": "1", "t": f"r{i}"})
        client.xgroup_create(keys.stream(2), keys.STREAM_GROUP, id="0")
        client.xreadgroup(keys.STREAM_GROUP, "c", {keys.stream(2): ">"}, count=1)
        client.zadd(keys.active(3), {"A": 1})
        m = MemoryMetrics()
        Observer(client, s, m, "worker", "w1", LoopProbe()).tick()
        Observer(client, s, m, "bridge", "b1", LoopProbe()).tick()
        figures = probes.shard_figures(client, s)
        assert [(f.backlog, f.pending) for f in figures] == [(0, 0), (1, 0), (1, 1), (3, 0)]
        assert m.gauges["tokens.active"] == 1 and m.gauges["redis.memory.used"] > 0
        assert "shards=s3:3 " in warnings_of(caplog, "backlog")[0]
        assert [(b["kind"], b["name"]) for b in probes.heartbeats(client)] == [
            ("bridge", "b1"),
            ("worker", "w1"),
        ]
    finally:
        client.close()
