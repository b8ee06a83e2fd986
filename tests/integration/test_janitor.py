"""Janitor against a real redis-server: stale tokens, expiry, safe trimming, the lock, retries."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tests.support import reference
from tests.support.checks import stored_metrics, window_mismatches
from tests.support.servers import RedisServer
from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.runtime.janitor import TRIP, Janitor
from tradeagg.settings import Settings, parse_windows
from tradeagg.store.connection import connect

A = "So11111111111111111111111111111111111111112"
B = "0x" + "cd" * 20


def settings(**kw) -> Settings:
    base = dict(windows=parse_windows("1s,5s"), shards=2, stale_after=0.0)
    base.update(kw)
    return Settings(**base)


def janitor(client, s: Settings, metrics=None, stop: threading.Event | None = None) -> Janitor:
    stop = stop or threading.Event()
    return Janitor(
        client, Engine(client, s), s, metrics or MemoryMetrics(), stop.wait, stop.is_set, "t"
    )


def trade(i: int, token: str, ts: int, side: str = "buy") -> Trade:
    return Trade(
        id=f"t{i}", token=token, side=side, quote_nano=1_000_000_000 + i, price=str(1 + i), ts=ts
    )


def stored(client, token: str) -> dict[str, str]:
    return {
        k.decode(): v.decode() for k, v in client.hgetall(keys.TokenKeys(token).aggregates).items()
    }


def test_stale_tokens_are_advanced_and_expired_ones_leave_the_index(redis_client):
    s = settings()
    engine = Engine(redis_client, s)
    t0 = now_ms()
    trades = [trade(i, A if i % 2 else B, t0 - 3000 + i * 100) for i in range(20)]
    engine.apply_records([t.record for t in trades], now=t0)
    metrics = MemoryMetrics()
    j = janitor(redis_client, s, metrics)
    at = t0 + 2_000
    run = j.run_once(now=at)
    assert (run.refreshed, run.expired, run.failed) == (2, 0, 0)
    for token in (A, B):
        assert int(redis_client.get(keys.TokenKeys(token).last_update)) == at
        want = reference.windows([t for t in trades if t.token == token], at, s.windows)
        got = stored(redis_client, token)
        for w in s.windows:
            assert window_mismatches(stored_metrics(got, w.label), want[w.label]) == [], w.label
    # A's keys expire (simulated): the next pass drops it from the index, B stays
    redis_client.delete(*keys.token_keys(A))
    run = j.run_once(now=at + 10)
    assert (run.refreshed, run.expired) == (1, 1)
    members = {
        m.decode() for s_ in range(s.shards) for m in redis_client.zrange(keys.active(s_), 0, -1)
    }
    assert members == {B}
    assert metrics.totals()["janitor.runs"] == 2
    assert metrics.totals()["janitor.expired"] == 1
    assert "janitor.duration" in metrics.timings


def test_fresh_tokens_are_left_alone(redis_client):
    s = settings(stale_after=60.0)
    Engine(redis_client, s).apply_records([trade(1, A, now_ms()).record])
    run = janitor(redis_client, s).run_once()
    assert (run.refreshed, run.expired) == (0, 0)


def test_trim_never_passes_pending_or_undelivered_entries(redis_client):
    s = settings(shards=1)
    stream = keys.stream(0)
    ids = [redis_client.xadd(stream, {"v": "1", "t": f"x{i}"}).decode() for i in range(10)]
    j = janitor(redis_client, s)
    assert j.run_once().trimmed == 0  # no group: nothing was read, nothing may go
    redis_client.xgroup_create(stream, keys.STREAM_GROUP, id="0")
    redis_client.xreadgroup(keys.STREAM_GROUP, "c1", {stream: ">"}, count=6)
    redis_client.xack(stream, keys.STREAM_GROUP, *ids[:2], ids[3])
    assert j.run_once().trimmed == 2  # ids[2] is still pending
    assert [e[0].decode() for e in redis_client.xrange(stream)] == ids[2:]
    redis_client.xack(stream, keys.STREAM_GROUP, ids[2], *ids[4:6])
    assert j.run_once().trimmed == 3  # up to the last delivered entry, which stays
    assert [e[0].decode() for e in redis_client.xrange(stream)] == ids[5:]
    # a second group that has read less holds the trim back
    redis_client.xgroup_create(stream, "other", id=ids[6])
    redis_client.xreadgroup(keys.STREAM_GROUP, "c1", {stream: ">"})
    redis_client.xack(stream, keys.STREAM_GROUP, *ids[6:])
    assert j.run_once().trimmed == 1
    assert [e[0].decode() for e in redis_client.xrange(stream)] == ids[6:]


def test_one_janitor_holds_the_lock(redis_client):
    s = settings(maintenance_interval=0.1)
    a, b = janitor(redis_client, s), janitor(redis_client, s)
    assert a.hold() and a.hold()  # renew
    assert not b.hold()
    b.release()  # not the holder: no effect
    assert not b.hold()
    a.release()
    assert b.hold() and not a.hold()
    assert 0 < redis_client.pttl(keys.janitor_lock()) <= b.lock_ms


def test_run_loop_stops_and_releases(redis_client):
    s = settings(maintenance_interval=0.05)
    stop = threading.Event()
    metrics = MemoryMetrics()
    j = janitor(redis_client, s, metrics, stop)
    th = threading.Thread(target=j.run)
    th.start()
    deadline = time.monotonic() + 10
    while metrics.totals().get("janitor.runs", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    th.join(10)
    assert not th.is_alive()
    assert metrics.totals()["janitor.runs"] >= 3
    assert redis_client.get(keys.janitor_lock()) is None


def test_retries_while_redis_is_down_then_finishes(tmp_path, caplog):
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        s = settings(redis_url=server.url)
        client = connect(s)
        Engine(client, s).apply_records([trade(1, A, now_ms() - 500).record])
        j = janitor(client, s)
        server.kill()
        restarter = threading.Timer(1.5, server.start)
        restarter.start()
        with caplog.at_level(logging.WARNING, logger="tradeagg.janitor"):
            run = j.run_once()
        restarter.join()
        assert run.refreshed == 1
        assert any("retrying" in r.getMessage() for r in caplog.records)
    finally:
        server.stop()


@pytest.mark.parametrize("n", [2_500])
def test_many_stale_tokens_in_pages(redis_client, n):
    s = settings(shards=1)
    engine = Engine(redis_client, s)
    t0 = now_ms()
    tokens = [f"0x{i:040x}" for i in range(n)]
    for i in range(0, n, 500):
        engine.apply_records([trade(k, tokens[k], t0 - 100).record for k in range(i, i + 500)])
    sent: list[int] = []  # Lua calls per round trip, as the janitor's pipelines send them
    pipeline = redis_client.pipeline

    def counted(*args, **kwargs):
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        def execute_counted(*a, **kw):
            sent.append(sum(1 for c in pipe.command_stack if c[0][0] == "EVALSHA"))
            return execute(*a, **kw)

        pipe.execute = execute_counted
        return pipe

    redis_client.pipeline = counted
    run = janitor(redis_client, s).run_once(now=t0 + 3_000)
    redis_client.pipeline = pipeline
    assert run.refreshed == n
    assert redis_client.zcard(keys.active(0)) == n
    # no page-long pipeline: Redis serves other clients between the janitor's few calls
    assert max(sent) <= TRIP <= 32


def test_janitor_reclaim_and_deep_check_on_a_cluster(redis_cluster, cluster_client):
    """Every script here touches one key or one token: it must run on a 3-master cluster."""
    import gevent.pool

    from tradeagg.runtime.reclaim import Reclaimer
    from tradeagg.store import streams
    from tradeagg.store.connection import Cluster

    cluster_client = Cluster(host="127.0.0.1", port=redis_cluster.ports[0])
    s = settings(shards=3, entry_trades=10)
    engine = Engine(cluster_client, s)
    t0 = now_ms()
    tokens = [f"0x{i:040x}" for i in range(1, 30)]
    trades = [trade(i, tokens[i % len(tokens)], t0 - 30 * i) for i in range(120)]
    streams.append(cluster_client, s, trades)
    for shard in range(s.shards):
        cluster_client.xgroup_create(keys.stream(shard), keys.STREAM_GROUP, id="0")
        cluster_client.xreadgroup(keys.STREAM_GROUP, "dead", {keys.stream(shard): ">"})
    metrics = MemoryMetrics()
    claimed = Reclaimer(engine, gevent.pool.Pool(2), s, metrics, "rc").reclaim(0)
    assert claimed.claimed > 0 and claimed.left_pending == 0
    assert metrics.totals()["trades.applied"] == len(trades)
    victim = keys.TokenKeys(tokens[3])
    cluster_client.hset(victim.aggregates, "5s:buy_volume", "1.000000000")
    while now_ms() <= t0 + 1:
        time.sleep(0.001)
    j = janitor(cluster_client, s, metrics)
    assert j.hold()
    run = j.run_once()
    assert (run.refreshed, run.rebuilt, run.failed) == (len(tokens), 1, 0)
    assert run.trimmed > 0
    assert all(cluster_client.xlen(keys.stream(i)) <= 1 for i in range(s.shards))


def test_a_long_catch_up_is_advanced_call_after_call_until_it_reaches_now(redis_client):
    """Each advance slides a bounded number of entries (lib/slide.lua SLIDE_MAX):
    the janitor calls again while the token answers BEHIND, within one pass."""
    s = settings(windows=parse_windows("10s,1m"))
    engine = Engine(redis_client, s)
    t0 = now_ms() - 60_000
    trades = [trade(i, A, t0 + i * 5, side="buy" if i % 3 else "sell") for i in range(10_000)]
    for i in range(0, len(trades), 4_000):
        engine.apply_records([t.record for t in trades[i : i + 4_000]], now=t0 + 50_000)
    at = t0 + 50_000 + 40_000  # 8,000 entries leave the 1m window: more than one call's share
    [r] = Engine(redis_client, s).advance([A], now=at)
    assert r.behind and r.last_update < at  # one call stops short
    run = janitor(redis_client, s).run_once(now=at)
    assert (run.refreshed, run.failed) == (1, 0)
    assert int(redis_client.get(keys.TokenKeys(A).last_update)) == at
    want = reference.windows(trades, at, s.windows)
    got = stored(redis_client, A)
    for w in s.windows:
        assert window_mismatches(stored_metrics(got, w.label), want[w.label]) == [], w.label
