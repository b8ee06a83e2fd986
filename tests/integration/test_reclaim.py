"""Reclaim and poison entries against a real redis-server (in process, no patching)."""

from __future__ import annotations

import subprocess
import sys
import time

import gevent.pool
import redis

from tests.support.checks import assert_matches_reference
from tests.support.fault_procs import reclaim
from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.runtime.reclaim import Reclaimer
from tradeagg.settings import Settings, parse_windows
from tradeagg.store import streams

TOKENS = ["So11111111111111111111111111111111111111112", "0x" + "ef" * 20, "0x" + "12" * 20]


def settings(**kw) -> Settings:
    base = dict(windows=parse_windows("5s,1m"), shards=2, entry_trades=3, max_deliveries=3)
    base.update(kw)
    return Settings(**base)


def make_trades(n: int, t0: int) -> list[Trade]:
    return [
        Trade(
            id=f"r{i}",
            token=TOKENS[i % 3],
            side="buy" if i % 4 else "sell",
            quote_nano=10**9 + 7 * i,
            price=f"{1 + i % 5}.5",
            ts=t0 - 200 * (i % 7),
            seq=i % 2,
        )
        for i in range(n)
    ]


def deliver(client, s: Settings, consumer: str) -> int:
    """XREADGROUP everything as ``consumer`` without acking: a consumer that then died."""
    n = 0
    for shard in range(s.shards):
        try:
            client.xgroup_create(keys.stream(shard), keys.STREAM_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # the group exists already: fine; else fail
                raise
        resp = client.xreadgroup(keys.STREAM_GROUP, consumer, {keys.stream(shard): ">"})
        n += len(resp[0][1]) if resp else 0
    return n


def reclaimer(client, s: Settings, metrics: MemoryMetrics, name: str = "rc") -> Reclaimer:
    return Reclaimer(Engine(client, s), gevent.pool.Pool(4), s, metrics, name)


def assert_exact(client, s: Settings, trades: list[Trade], at: int) -> None:
    assert_matches_reference(Reader(client, s), trades, at, s.windows, TOKENS)


def pending(client, s: Settings) -> int:
    return sum(
        client.xpending(keys.stream(sh), keys.STREAM_GROUP)["pending"] for sh in range(s.shards)
    )


def test_reclaim_applies_what_a_dead_consumer_held(redis_client):
    s = settings()
    t0 = now_ms()
    trades = make_trades(40, t0)
    streams.append(redis_client, s, trades + trades[:10])  # with duplicates
    entries = deliver(redis_client, s, "dead-1")
    # the dead consumer had committed part of its work before dying (no XACK)
    Engine(redis_client, s).apply_records([t.record for t in trades[:15]])
    metrics = MemoryMetrics()
    result = reclaimer(redis_client, s, metrics).reclaim(0)
    assert (result.claimed, result.poison, result.left_pending) == (entries, 0, 0)
    totals = metrics.totals()
    assert totals["trades.applied"] == 25
    # 15 were applied before; the 10 sent twice are dropped within the batch, uncounted
    assert totals["trades.duplicate"] == 15
    assert pending(redis_client, s) == 0
    assert_exact(redis_client, s, trades, now_ms())


def test_min_idle_leaves_recent_entries_alone(redis_client):
    s = settings()
    streams.append(redis_client, s, make_trades(9, now_ms()))
    deliver(redis_client, s, "busy")
    result = reclaimer(redis_client, s, MemoryMetrics()).reclaim(60_000)
    assert result.claimed == 0
    assert pending(redis_client, s) > 0


def test_poison_entry_goes_to_dead_letters_and_is_acked(redis_client):
    s = settings(shards=1)
    trades = make_trades(6, now_ms())
    ids = streams.append(redis_client, s, trades)
    deliver(redis_client, s, "dead-2")
    # the first entry has been handed out (and failed) too often already
    redis_client.xclaim(keys.stream(0), keys.STREAM_GROUP, "dead-2", 0, [ids[0]], retrycount=3)
    metrics = MemoryMetrics()
    result = reclaimer(redis_client, s, metrics).reclaim(0)
    assert (result.claimed, result.poison, result.left_pending) == (len(ids), 1, 0)
    dead = redis_client.xrange(keys.dead(0))
    assert len(dead) == 1
    fields = {k.decode(): v.decode() for k, v in dead[0][1].items()}
    assert fields["entry"] == ids[0]
    assert "delivered 4 times" in fields["reason"]
    assert trades[0].id in fields["raw"]
    assert pending(redis_client, s) == 0
    assert metrics.totals()["trades.applied"] == 3  # the other two entries


def test_idle_consumers_without_pending_are_removed(redis_client):
    s = settings(shards=1, reclaim_idle_ms=100)
    streams.append(redis_client, s, make_trades(6, now_ms()))
    deliver(redis_client, s, "gone")
    redis_client.xreadgroup(keys.STREAM_GROUP, "empty", {keys.stream(0): ">"})
    rc = reclaimer(redis_client, s, MemoryMetrics())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rc.reclaim(0)
        rc.forget_idle_consumers()
        names = {
            c["name"].decode()
            for c in redis_client.xinfo_consumers(keys.stream(0), keys.STREAM_GROUP)
        }
        if names <= {"rc"}:
            break
        time.sleep(0.1)
    assert names <= {"rc"}  # "gone" (claimed from) and "empty" were both idle, holding nothing


def test_reclaim_command_prints_a_summary(redis_server, redis_client):
    s = settings()
    trades = make_trades(12, now_ms())
    streams.append(redis_client, s, trades)
    deliver(redis_client, s, "dead-3")
    env = {
        "REDIS_URL": redis_server.url,
        "TRADEAGG_SHARDS": "2",
        "TRADEAGG_WINDOWS": "5s,1m",
        "PATH": "/usr/bin:/bin",
    }
    out = reclaim(env)
    line = out.stdout.strip()
    assert line.startswith("reclaim: claimed=")
    fields = dict(kv.split("=") for kv in line.split(": ", 1)[1].split())
    assert fields["applied"] == "12" and fields["left_pending"] == "0"
    assert pending(redis_client, s) == 0
    bad = subprocess.run(
        [sys.executable, "-m", "tradeagg", "reclaim", "--min-idle-ms", "-1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--min-idle-ms" in bad.stderr
