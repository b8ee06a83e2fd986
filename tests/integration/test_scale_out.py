"""Scale out: 2 bridges and 3 workers on a 3-master Redis Cluster and a 6-partition topic.

Trades (with duplicates and late arrivals) are produced in two halves; one
worker and one bridge are scaled down (SIGTERM, as a Procfile scale-down
does) between them, so the second half of the partitions of the stopped
bridge can only reach Redis through the other bridge after a rebalance.
When every Kafka offset is committed and every shard stream is consumed and
acknowledged, every token must equal the brute-force reference.
"""

from __future__ import annotations

import random
import uuid

from tests.support import reference
from tests.support.bridge_procs import (
    Proc,
    committed,
    env_for,
    produce,
    stream_records,
    trade_message,
)
from tests.support.bridge_procs import wait_for as wait_until
from tests.support.checks import assert_matches_reference
from tradeagg.clock import now_ms
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.read import Reader
from tradeagg.observe import probes
from tradeagg.settings import Settings, parse_windows
from tradeagg.store.connection import connect

PARTITIONS = 6
SHARDS = 6
WINDOWS = "1m,5m,15m"


def feed(n: int) -> list:
    """``n`` distinct trades over the last two minutes, plus duplicates and late arrivals."""
    start = now_ms() - 120_000
    trades = SyntheticFeed(tokens=150, seed=11, zipf_s=0.9).trades(n, start, rate=n / 110)
    rng = random.Random(5)
    arrivals = list(trades)
    late = rng.sample(range(len(arrivals)), len(arrivals) // 10)
    for i in sorted(late, reverse=True):  # moved to the end: they arrive late
        arrivals.append(arrivals.pop(i))
    arrivals += rng.sample(trades, len(trades) // 10)  # duplicates
    return arrivals


def drained(client, settings: Settings, bootstrap: str, topic: str, sent: int, seen: dict) -> bool:
    """All ``sent`` messages committed and in the streams, every entry acknowledged.

    (Tansu's high watermarks can lag the committed offsets, so the committed
    offsets are summed against the number of messages produced instead.)
    """
    seen["committed"] = committed(bootstrap, topic, topic, PARTITIONS)
    seen["records"] = len(stream_records(client, settings.shards))
    seen["shards"] = probes.shard_figures(client, settings)
    return (
        sum(seen["committed"].values()) == sent
        and seen["records"] == sent
        and all(s.group and s.backlog == 0 and s.pending == 0 for s in seen["shards"])
    )


def test_two_bridges_three_workers_scale_down_exact(redis_cluster, kafka_broker, tmp_path):
    redis_cluster.flushall()
    topic = f"trades-{uuid.uuid4().hex[:10]}"
    kafka_broker.create_topic(topic, partitions=PARTITIONS)
    env = env_for(
        redis_cluster.url,
        kafka_broker.bootstrap,
        topic,
        TRADEAGG_SHARDS=str(SHARDS),
        TRADEAGG_WINDOWS=WINDOWS,
        TRADEAGG_BLOCK_MS="200",
        TRADEAGG_ENTRY_TRADES="50",
    )
    settings = Settings.from_env(env)
    arrivals = feed(4_000)
    half = len(arrivals) // 2
    procs: list[Proc] = []
    client = connect(settings)
    try:
        produce(kafka_broker.bootstrap, topic, (trade_message(t) for t in arrivals[:half]))
        for i in range(2):
            procs.append(Proc("bridge", env, tmp_path / f"bridge{i}.log"))
        workers = [
            Proc("worker", {**env, "TRADEAGG_CONSUMER": f"w{i}"}, tmp_path / f"worker{i}.log")
            for i in range(3)
        ]
        procs += workers

        def some_applied() -> bool:
            return sum(s.active for s in probes.shard_figures(client, settings)) > 20

        wait_until(some_applied, timeout=90, what="workers to apply the first trades")
        assert workers[0].terminate(timeout=30) == 0, workers[0].text()[-3000:]
        bridges = procs[:2]
        assert bridges[1].terminate(timeout=30) == 0, bridges[1].text()[-3000:]
        produce(kafka_broker.bootstrap, topic, (trade_message(t) for t in arrivals[half:]))
        seen: dict = {}
        try:
            wait_until(
                lambda: drained(
                    client, settings, kafka_broker.bootstrap, topic, len(arrivals), seen
                ),
                timeout=120,
                what="every offset committed and every stream entry acknowledged",
            )
        except AssertionError:
            logs = "\n".join(f"--- {p.log.name}\n{p.text()[-2000:]}" for p in procs)
            raise AssertionError(f"not drained: {seen}\n{logs}") from None
        at = now_ms()
        reader = Reader(client, settings)
        distinct = reference.distinct(arrivals)
        tokens = sorted({t.token for t in distinct})
        ws = parse_windows(WINDOWS)
        assert_matches_reference(reader, distinct, at, ws, tokens)
        for proc in (bridges[0], *workers[1:]):
            assert proc.terminate(timeout=30) == 0, proc.text()[-3000:]
    finally:
        for proc in procs:
            proc.kill()
        client.close()
