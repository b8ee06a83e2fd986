"""Outages with real processes: Redis down for 30 s, and a Kafka broker restart.

Trades flow Kafka → ``python -m tradeagg bridge`` → shard streams →
``python -m tradeagg worker``, both subprocesses; the test owns the Redis
server (AOF, fsync always) or the Tansu broker it breaks. Through an outage
neither process may exit, both must say what is wrong in their logs, and once
the service is back every token must equal the brute-force reference
(tests/reference.py) over the distinct trades that were consumed. Waits poll
a condition with a deadline; the only plain wait is the outage itself.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.support.bridge_procs import (
    Proc,
    dead_letters,
    wait_for,
)
from tests.support.checks import assert_matches_reference
from tests.support.fault_procs import Feed, settings_of, worker_env
from tests.support.fixtures_kafka import TansuBroker
from tests.support.flow import PARTITIONS, Flow, assert_alive
from tests.support.servers import RedisServer
from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.engine.read import Reader
from tradeagg.store.connection import connect

OUTAGE_S = 30.0


def kafka_env(redis_url: str, bootstrap: str, topic: str) -> dict[str, str]:
    # the longest window outlasts the outage, so trades sent before it still count after
    env = worker_env(redis_url, TRADEAGG_WINDOWS="10s,2m")
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TRADEAGG_KAFKA_TOPIC=topic,
        TRADEAGG_KAFKA_GROUP=topic,
    )
    return env


def assert_exact(client, settings, feed: Feed) -> None:
    """Every token, read at one instant, equals the reference over the distinct trades sent.

    The instant is a little ahead of now: the janitor keeps stamping quiet
    tokens with the time while we read, and a read earlier than a token's
    stamp is refused.
    """
    trades = list(feed.sent.values())
    at = now_ms() + 2_000
    tokens = sorted({t.token for t in trades})
    assert_matches_reference(Reader(client, settings), trades, at, settings.windows, tokens)


def applied(client, shards: int) -> int:
    return sum(client.zcard(keys.active(i)) for i in range(shards))


def test_redis_down_30s_while_trades_flow(tmp_path: Path, kafka_broker, kafka_topic):
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    env = kafka_env(server.url, kafka_broker.bootstrap, kafka_topic)
    s = settings_of(env)
    feed = Feed(seed=21, longest_ms=s.longest_ms)
    flow = Flow(kafka_broker.bootstrap, kafka_topic, feed)
    client = connect(s)
    bridge = Proc("bridge", env, tmp_path / "bridge.log")
    worker = Proc("worker", env, tmp_path / "worker.log")
    try:
        flow.send(300)
        wait_for(lambda: applied(client, s.shards), 60, "first trades applied")
        flow.send(200)  # in Kafka, in the bridge or in the streams when Redis dies
        server.kill()
        down_at = time.monotonic()
        sent_down = 0
        while time.monotonic() < down_at + OUTAGE_S:  # the deliberate outage
            if time.monotonic() < down_at + 5:  # trades keep coming for its first 5 s
                flow.send(40)
                sent_down += 40
            assert_alive(bridge, worker)
            time.sleep(0.2)
        # the bridge held a batch throughout
        assert 'msg="redis write failed, retrying" what=bridge.write' in bridge.text()
        server.start()
        up_at = time.monotonic()
        flow.send(300)
        wait_for(lambda: flow.all_in(client, s.shards), 60, "everything consumed after the outage")
        recovered_s = time.monotonic() - up_at
        assert_alive(bridge, worker)
        assert_exact(client, s, feed)
        assert dead_letters(client, s.shards) == []
        worker_log, bridge_log = worker.text(), bridge.text()
        # it says what is wrong: a shard part restarted on a failed read, or a refused
        # apply held and retried in place (which of the two depends on the instant)
        assert "ConnectionError" in worker_log
        assert "redis work failed, retrying" in worker_log  # janitor / reclaimer backoff
        for text in (worker_log, bridge_log):  # the redis warning went on, then cleared
            assert 'msg="warning" warning=redis' in text
            assert 'msg="warning cleared" warning=redis' in text
        print(
            f"\nredis down {OUTAGE_S:.0f}s: trades={feed.n} duplicates={feed.duplicates} "
            f"late={feed.late} sent-while-down={sent_down} recovered-in={recovered_s:.1f}s "
            f"bridge-retries={bridge_log.count('what=bridge.write')} "
            f"worker-crash-restarts={worker_log.count('part crashed')}"
        )
        assert bridge.terminate() == 0
        assert worker.terminate() == 0
    finally:
        bridge.kill()
        worker.kill()
        client.close()
        server.stop()


def test_broker_restart(tmp_path: Path, redis_client, redis_server):
    # a broker of our own: Tansu keeps topics and offsets in memory, a restart loses them
    broker = TansuBroker(tmp_path)
    broker.start()
    topic = "outage-trades"
    broker.create_topic(topic, PARTITIONS)
    env = kafka_env(redis_server.url, broker.bootstrap, topic)
    s = settings_of(env)
    feed = Feed(seed=22, longest_ms=s.longest_ms)
    bridge = Proc("bridge", env, tmp_path / "bridge.log")
    worker = Proc("worker", env, tmp_path / "worker.log")
    try:
        before = Flow(broker.bootstrap, topic, feed)
        for _ in range(4):
            before.send(100)
        # everything sent before the stop reaches the streams, so the reference is exact
        wait_for(lambda: before.all_in(redis_client, s.shards), 60, "first trades through")
        assert_exact(redis_client, s, feed)
        marker = len(bridge.text())
        broker.stop()
        down_at = time.monotonic()
        wait_for(lambda: broker_errors(bridge.text()[marker:]), 30, "the bridge logs the broker")
        while time.monotonic() < down_at + 6:  # down long enough for several reconnects
            assert_alive(bridge, worker)
            time.sleep(0.2)
        broker.start()  # same port, empty: the topic is created again
        broker.create_topic(topic, PARTITIONS)
        after = Flow(broker.bootstrap, topic, feed)
        for _ in range(4):
            after.send(100)  # with duplicates of trades sent before the restart
        up_at = time.monotonic()
        wait_for(lambda: after.all_in(redis_client, s.shards), 90, "trades after the restart")
        recovered_s = time.monotonic() - up_at
        assert_alive(bridge, worker)
        assert_exact(redis_client, s, feed)
        assert dead_letters(redis_client, s.shards) == []
        outage_log = bridge.text()[marker:]
        errors = broker_errors(outage_log)
        print(
            f"\nbroker restart: trades={feed.n} duplicates={feed.duplicates} late={feed.late} "
            f"recovered-in={recovered_s:.1f}s bridge-kafka-error-lines={len(errors)}"
        )
        assert "partitions assigned" in outage_log  # rejoined the group on the new broker
        limit = 2 + (time.monotonic() - down_at) / 5  # at most one line per code per 5 s
        for code in set(errors):
            assert errors.count(code) <= limit, outage_log
        # librdkafka alone prints a connect failure every ~50 ms: none of that gets through
        assert outage_log.count("Connection refused") <= limit, outage_log[-3000:]
        assert bridge.terminate() == 0
        assert worker.terminate() == 0
    finally:
        bridge.kill()
        worker.kill()
        broker.stop()


def broker_errors(text: str) -> list[str]:
    """Codes of the bridge's own ``kafka error`` lines."""
    return re.findall(r'msg="kafka error" .*?code=(\S+)', text)
