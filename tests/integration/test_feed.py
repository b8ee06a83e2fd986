"""The change feed (CONTRACT §6): coalescing, ordering, capped length, Kafka output."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import gevent.pool
from confluent_kafka import Consumer, Producer

from tests.integration.test_reclaim import TOKENS, deliver, make_trades
from tests.integration.test_reclaim import settings as reclaim_settings
from tests.integration.test_worker import SHARDS, drained, feed, worker_env
from tests.support.bridge_procs import Proc, running, wait_for
from tradeagg.contract import keys
from tradeagg.contract.documents import token_json
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import Engine, now_ms
from tradeagg.engine.read import Reader
from tradeagg.observe.metrics import NullMetrics
from tradeagg.runtime.feed import ChangeFeed
from tradeagg.runtime.reclaim import Reclaimer
from tradeagg.settings import Settings
from tradeagg.store import streams
from tradeagg.store.streams import append


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def announcements(client, shards: int) -> list[dict[str, str]]:
    out = []
    for shard in range(shards):
        for _id, fields in client.xrange(keys.changes(shard)):
            out.append({k.decode(): v.decode() for k, v in fields.items()})
    return out


def settings_for(url: str, **extra: str) -> Settings:
    return Settings.from_env({"REDIS_URL": url, "TRADEAGG_SHARDS": "2", **extra})


def test_a_busy_token_is_announced_at_most_feed_hz_times_a_second(redis_server, redis_client):
    s = settings_for(redis_server.url, TRADEAGG_FEED_HZ="4")
    engine = Engine(redis_client, s)
    clock = FakeClock()
    cf = ChangeFeed(redis_client, s, NullMetrics(), clock=clock)
    trades = SyntheticFeed(tokens=1, seed=3).trades(200, now_ms() - 10_000, rate=50)
    token = trades[0].token
    times = []
    for i, t in enumerate(trades):  # 200 commits spread over 2 s of the feed's clock
        clock.t = 1000.0 + i * 0.01
        cf.applied(engine.apply_records([t.record]))
        before = len(announcements(redis_client, 2))
        cf.flush_once()
        if len(announcements(redis_client, 2)) > before:
            times.append(clock.t)
    clock.t += 1.0
    cf.flush_once()  # the trailing announcement carries the newest state
    got = announcements(redis_client, 2)
    assert len(got) == len(times) + 1
    assert 8 <= len(times) <= 9  # 2 s at 4 Hz, leading edge at 0
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.25 - 1e-9
    assert all(a["token"] == token for a in got)
    stored = int(redis_client.get(keys.TokenKeys(token).last_update))
    assert int(got[-1]["last_update"]) == stored
    assert [int(a["last_update"]) for a in got] == sorted(int(a["last_update"]) for a in got)
    assert not cf.pending and len(cf.sent) <= 1


def test_change_streams_are_capped(redis_server, redis_client):
    s = settings_for(redis_server.url, TRADEAGG_FEED_MAXLEN="10")
    engine = Engine(redis_client, s)
    cf = ChangeFeed(redis_client, s, NullMetrics())
    trades = SyntheticFeed(tokens=60, seed=4).trades(600, now_ms() - 10_000, rate=60)
    cf.applied(engine.apply_records([t.record for t in trades]))
    assert len(cf.pending) >= 40
    cf.flush_once()
    assert not cf.pending
    lengths = [redis_client.xlen(keys.changes(i)) for i in range(2)]
    assert lengths == [10, 10]


def test_failed_and_unchanged_results_are_not_announced(redis_server, redis_client):
    s = settings_for(redis_server.url)
    engine = Engine(redis_client, s)
    cf = ChangeFeed(redis_client, s, NullMetrics())
    t = SyntheticFeed(tokens=1, seed=5).trades(1, now_ms() - 1_000, rate=1)[0]
    first = engine.apply_records([t.record])
    cf.applied(first)
    cf.flush_once()
    again = engine.apply_records([t.record])  # a duplicate: new only if time moved on
    cf.applied(again)
    cf.sent.clear()
    cf.flush_once()
    moved = again[0].last_update > first[0].last_update
    assert again[0].duplicates == 1
    assert len(announcements(redis_client, 2)) == 1 + moved
    cf.applied(again)  # the same state noted twice is announced once
    cf.sent.clear()
    cf.flush_once()
    assert len(announcements(redis_client, 2)) == 1 + moved
    # the janitor's slide announces (to an instant after every earlier one, and past the
    # coalescing interval of the announcement above: coalescing is tested apart)
    cf.refreshed(engine.advance([t.token], again[0].last_update + 1))
    cf.sent.clear()
    cf.flush_once()
    assert len(announcements(redis_client, 2)) == 2 + moved


def test_worker_announces_only_committed_state(redis_server, redis_client, tmp_path: Path):
    """Every announcement, read back at once, finds a last_update at least as new;
    every traded token is announced with its final state."""
    env = worker_env(redis_server.url, TRADEAGG_FEED_HZ="20")
    s = Settings.from_env(env)
    trades = feed(2_000, seed=21, tokens=25)
    seen: dict[str, int] = {}
    ids = {keys.changes(i): "0-0" for i in range(SHARDS)}
    with running(Proc("worker", env, tmp_path / "worker.log")) as worker:
        for i in range(0, len(trades), 100):
            append(redis_client, s, trades[i : i + 100])
            for stream, entries in redis_client.xread(ids, block=50) or []:
                for entry_id, fields in entries:
                    ids[stream.decode()] = entry_id.decode()
                    token, lu = fields[b"token"].decode(), int(fields[b"last_update"])
                    stored = int(redis_client.get(keys.TokenKeys(token).last_update))
                    assert stored >= lu, (token, stored, lu)
                    seen[token] = max(lu, seen.get(token, 0))
        wait_for(lambda: drained(redis_client), 60, "worker to drain")
        tokens = sorted({t.token for t in trades})

        def all_final() -> bool:
            for a in announcements(redis_client, SHARDS):
                seen[a["token"]] = max(int(a["last_update"]), seen.get(a["token"], 0))
            stored = {t: int(redis_client.get(keys.TokenKeys(t).last_update)) for t in tokens}
            return all(seen.get(t) == stored[t] for t in tokens)

        wait_for(all_final, 30, "final announcements")
    assert "Traceback" not in worker.text()


def test_output_topic_gets_the_show_json_object(
    redis_server, redis_client, kafka_broker, kafka_topic
):
    s = dataclasses.replace(
        settings_for(redis_server.url, KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap),
        output_topic=kafka_topic,
    )
    engine = Engine(redis_client, s)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "linger.ms": 5})
    cf = ChangeFeed(redis_client, s, NullMetrics(), producer)
    trades = SyntheticFeed(tokens=5, seed=6).trades(100, now_ms() - 20_000, rate=5)
    cf.applied(engine.apply_records([t.record for t in trades]))
    cf.flush_once()
    assert producer.flush(15) == 0 and cf.delivery_errors == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap,
            "group.id": kafka_topic,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([kafka_topic])
    got: dict[str, dict] = {}
    tokens = {t.token for t in trades}
    try:
        wait_for(lambda: _poll_into(consumer, got) or set(got) == tokens, 30, "output messages")
    finally:
        consumer.close()
    reader = Reader(redis_client, s)
    for token, doc in got.items():
        view = reader.read(token, doc["at"])  # the same instant: the same object, exactly
        assert doc == json.loads(token_json(view), parse_float=Decimal)
        assert doc["windows"]["1m"]["buys"] + doc["windows"]["1h"]["sells"] > 0


def _poll_into(consumer: Consumer, got: dict[str, dict]) -> bool:
    msg = consumer.poll(0.5)
    if msg is not None and msg.error() is None:
        doc = json.loads(msg.value(), parse_float=Decimal)
        assert msg.key().decode() == doc["token"]
        got[doc["token"]] = doc
    return False


def test_reclaimed_trades_are_announced(redis_client):
    """What a dead consumer left pending and the worker's reclaimer applies is announced too."""
    s = reclaim_settings()
    streams.append(redis_client, s, make_trades(12, now_ms()))
    deliver(redis_client, s, "dead-1")
    cf = ChangeFeed(redis_client, s, NullMetrics())
    engine = Engine(redis_client, s)
    rc = Reclaimer(engine, gevent.pool.Pool(2), s, NullMetrics(), "rc", on_applied=cf.applied)
    assert rc.reclaim(0).claimed > 0
    cf.flush_once()
    got = announcements(redis_client, s.shards)
    assert sorted(a["token"] for a in got) == sorted(TOKENS)
