"""Redis failover under Sentinel, with real bridge and worker processes.

Trades flow Kafka → bridge → shard streams → worker into a primary with one
replica, watched by three Sentinels; every client reaches Redis through a
``redis+sentinel://`` URL. Mid-stream the replication stream to the replica
is held (a partition), more trades are sent, the primary is SIGKILLed and the
replica is promoted: the writes only the primary had are gone. Then the old
primary comes back (the Sentinels make it a replica) and more trades flow.

With ``TRADEAGG_REDIS_WAIT_REPLICAS=1`` the bridge committed no offset and the
worker acknowledged no entry that a replica did not hold, so Kafka resends
what died with the primary: every token equals the brute-force reference.
With 0 the trades the primary alone had are lost; the test reports how many,
which is why the setting exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.support import reference
from tests.support.bridge_procs import Proc, wait_for
from tests.support.checks import assert_matches_reference
from tests.support.cluster_server import RedisClusterServer
from tests.support.fault_procs import Feed, settings_of, worker_env
from tests.support.flow import Flow, assert_alive
from tests.support.sentinel_set import SentinelSet
from tradeagg.contract import keys
from tradeagg.engine.apply import now_ms
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings
from tradeagg.store.connection import connect, text

# Reads are as of an instant ahead of now: under load a janitor pass may stamp a token
# later than an instant only a little ahead, and a read before last_update is refused.
READ_AHEAD_MS = 30_000


def settled(check):
    """``check`` for wait_for, through a failover: the test's own connections to the
    dead primary fail once before the client asks the Sentinels again."""

    def attempt() -> bool:
        try:
            return check()
        except redis.ConnectionError:
            return False

    return attempt


def last_ids(client, shards: int) -> list[str]:
    """The newest entry id ever added to each shard stream (trimming does not lower it)."""
    out = []
    for i in range(shards):
        try:
            out.append(text(client.xinfo_stream(keys.stream(i))["last-generated-id"]))
        except redis.ResponseError:  # no stream yet
            out.append("0-0")
    return out


def lost_trades(client, settings, feed: Feed, at: int) -> int:
    """Trades in the reference's longest window that the aggregates do not count."""
    longest = max(settings.windows, key=lambda w: w.ms)
    reader = Reader(client, settings)
    trades = list(feed.sent.values())
    lost = 0
    for token in sorted({t.token for t in trades}):
        want = reference.windows([t for t in trades if t.token == token], at, settings.windows)
        got = reader.read(token, at).windows[longest.label]
        lost += (want[longest.label]["buys"] + want[longest.label]["sells"]) - (got.buys + got.sells)
    return lost


def failover_env(redis_url: str, broker, topic: str, wait_replicas: int) -> dict[str, str]:
    env = worker_env(redis_url, TRADEAGG_WINDOWS="10s,5m")
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        TRADEAGG_KAFKA_TOPIC=topic,
        TRADEAGG_KAFKA_GROUP=topic,
        TRADEAGG_REDIS_WAIT_REPLICAS=str(wait_replicas),
        TRADEAGG_REDIS_WAIT_TIMEOUT_MS="200",
        TRADEAGG_RECLAIM_IDLE_MS="3000",
    )
    return env


@dataclass
class Run:
    """A feed through a real bridge and worker into Redis at ``url``, first trades through."""

    settings: Settings
    feed: Feed
    flow: Flow
    client: Any
    bridge: Proc
    worker: Proc

    @classmethod
    def start(cls, url: str, broker, topic: str, wait_replicas: int, seed: int, logs: Path) -> Run:
        env = failover_env(url, broker, topic, wait_replicas)
        s = settings_of(env)
        feed = Feed(seed=seed, longest_ms=s.longest_ms)
        run = cls(
            s,
            feed,
            Flow(broker.bootstrap, topic, feed),
            connect(s),
            Proc("bridge", env, logs / "bridge.log"),
            Proc("worker", env, logs / "worker.log"),
        )
        try:
            run.flow.send(300)
            wait_for(lambda: run.flow.all_in(run.client, s.shards), 90, "first trades through")
        except BaseException:
            run.stop()
            raise
        return run

    def stop(self) -> None:
        self.bridge.kill()
        self.worker.kill()
        self.client.close()


def run_failover(tmp_path: Path, broker, topic: str, wait_replicas: int) -> tuple[int, Feed]:
    redis_set = SentinelSet(tmp_path / "redis")
    redis_set.start()
    run = None
    try:
        run = Run.start(redis_set.url, broker, topic, wait_replicas, 30 + wait_replicas, tmp_path)
        s, feed, flow, client, bridge, worker = (
            run.settings, run.feed, run.flow, run.client, run.bridge, run.worker
        )
        redis_set.hold_replica()
        before = last_ids(redis_set.primary.client(), s.shards)
        flow.send(200)  # from here on, only the primary gets these writes
        wait_for(
            lambda: last_ids(redis_set.primary.client(), s.shards) != before,
            60,
            "new entries on the primary",
        )
        if wait_replicas == 0:  # nothing holds commit and ack back: let both happen
            primary = redis_set.primary.client()
            wait_for(lambda: flow.all_in(primary, s.shards), 60, "committed and acked")
        redis_set.fail_over()
        redis_set.rejoin_old_primary()
        flow.send(100)
        wait_for(
            settled(lambda: flow.all_in(client, s.shards)), 180, "everything through after failover"
        )
        assert_alive(bridge, worker)
        at = now_ms() + READ_AHEAD_MS
        lost = lost_trades(client, s, feed, at)
        if wait_replicas:
            trades = list(feed.sent.values())
            tokens = sorted({t.token for t in trades})
            assert_matches_reference(Reader(client, s), trades, at, s.windows, tokens)
        print(
            f"\nfailover WAIT={wait_replicas}: trades={feed.n} lost={lost} "
            f"bridge-retries={bridge.text().count('redis write failed, retrying')} "
            f"worker-held-acks={worker.text().count('replicas behind, ack held')}"
        )
        return lost, feed
    finally:
        if run is not None:
            run.stop()
        redis_set.stop()


def test_failover_with_wait_loses_nothing(tmp_path: Path, kafka_broker, kafka_topic):
    lost, _feed = run_failover(tmp_path, kafka_broker, kafka_topic, wait_replicas=1)
    assert lost == 0


def test_failover_without_wait_loses_what_only_the_primary_had(
    tmp_path: Path, kafka_broker, kafka_topic
):
    """The same partition without WAIT: trades committed to Kafka die with the primary.

    This is what the setting prevents, and proof that the scenario above bites.
    """
    lost, feed = run_failover(tmp_path, kafka_broker, kafka_topic, wait_replicas=0)
    assert 0 < lost <= feed.n


def test_cluster_primary_killed_with_wait_loses_nothing(tmp_path: Path, kafka_broker, kafka_topic):
    """3 primaries with a replica each; one primary SIGKILLed mid-run, its replica promoted."""
    cluster = RedisClusterServer(tmp_path / "cluster", masters=3, replicas=1)
    cluster.start(timeout=60)
    run = None
    try:
        run = Run.start(cluster.url, kafka_broker, kafka_topic, 1, 40, tmp_path)
        s, feed, flow, client, bridge, worker = (
            run.settings, run.feed, run.flow, run.client, run.bridge, run.worker
        )
        victim = cluster.primaries()[0]
        flow.send(200)
        victim.kill()
        wait_for(lambda: len(cluster.primaries()) == 3, 60, "a replica promoted")
        victim.start()  # its nodes.conf says it was failed over: it rejoins as a replica
        wait_for(lambda: cluster.role(victim) == "slave", 60, "the old primary as a replica")
        flow.send(100)
        wait_for(
            settled(lambda: flow.all_in(client, s.shards)), 180, "everything through after failover"
        )
        assert_alive(bridge, worker)
        at = now_ms() + READ_AHEAD_MS
        trades = list(feed.sent.values())
        assert_matches_reference(
            Reader(client, s), trades, at, s.windows, sorted({t.token for t in trades})
        )
        print(
            f"\ncluster failover WAIT=1: trades={feed.n} "
            f"bridge-retries={bridge.text().count('redis write failed, retrying')} "
            f"worker-held-acks={worker.text().count('replicas behind, ack held')}"
        )
    finally:
        if run is not None:
            run.stop()
        cluster.stop()
