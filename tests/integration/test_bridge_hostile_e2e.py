"""Real processes on the Tansu broker: hostile messages interleaved with a valid stream.

On every partition, issue 10's hostile messages (absurd numbers, 1 MiB junk
arrays, deep nesting, bad encodings) sit between valid trades. The bridge
and a worker run as ``python -m tradeagg``; then every valid trade must be
exact against the brute-force reference, each hostile message must be
exactly one dead letter (matched by partition and offset), every offset
committed, and the bridge must never have restarted its Kafka part.
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import Producer

from tests.support import reference
from tests.support.bridge_procs import Proc, committed, dead_letters, env_for, listed, wait_for
from tradeagg.devtools.synthetic import SyntheticFeed, to_message
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings

PARTITIONS = 4
SHARDS = 4
TOKEN = "So11111111111111111111111111111111111111112"
MIB = 1_040_000


def _junk(unit: bytes) -> bytes:
    return b"[" + b",".join([unit] * (MIB // (len(unit) + 1))) + b"]"


def _trade(quote: bytes) -> bytes:
    return (
        b'{"id":"h","token":"%s","side":"buy","amount":"1","quote":%s,"price":"1",'
        b'"ts":1,"trader":"%s"}' % (TOKEN.encode(), quote, TOKEN.encode())
    )


HOSTILE = [
    _trade(b"1e1000000"),
    b"[" + _trade(b"-1e1000000") + b"]",
    _trade(b"1E+99999999999"),
    _trade(b"9" * 100_000),
    _junk(b"0"),
    _junk(b"{}"),
    _junk(b"[]"),
    _junk(b"1.5"),
    b"[" * (MIB // 2) + b"]" * (MIB // 2),
    b'[{"id":"\\u0000","side":"\\ud800"}]',
    b"\xff\xfe\xfd",
    b'{"quote":"1","quote":1e99999999}',  # duplicate key: the last one counts
]


def produce(bootstrap: str, topic: str, plan: list[tuple[int, bytes, bool]]) -> dict[str, Any]:
    """Send (partition, value, hostile) in order; returns offsets of the hostile ones and ends."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.max.bytes": 10_000_000})
    hostile: set[tuple[int, int]] = set()
    ends: dict[int, int] = {}

    def done(err: Any, msg: Any, is_hostile: bool) -> None:
        assert err is None, err
        ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)
        if is_hostile:
            hostile.add((msg.partition(), msg.offset()))

    for n, (part, value, is_hostile) in enumerate(plan):
        p.produce(
            topic, value=value, partition=part, on_delivery=lambda e, m, h=is_hostile: done(e, m, h)
        )
        if n % 200 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    return {"hostile": hostile, "ends": ends}


def test_hostile_messages_on_every_partition(
    redis_server, redis_client, kafka_broker, kafka_topic, tmp_path
):
    now = int(time.time() * 1000)
    trades = SyntheticFeed(tokens=30, seed=21).trades(2_000, now - 600_000, 10)
    plan: list[tuple[int, bytes, bool]] = []
    for i, t in enumerate(trades):
        part = i % PARTITIONS
        plan.append((part, json.dumps(to_message(t)).encode(), False))
        if i % 41 == 7:  # one in ~41 messages, rotating over partitions and kinds
            plan.append((part, HOSTILE[(i // 41) % len(HOSTILE)], True))
    sent = produce(kafka_broker.bootstrap, kafka_topic, plan)
    hostile_sent = sent["hostile"]
    assert {p for p, _ in hostile_sent} == set(range(PARTITIONS))
    assert len(hostile_sent) == sum(1 for *_, h in plan if h) == 49

    env = env_for(redis_server.url, kafka_broker.bootstrap, kafka_topic)
    bridge = Proc("bridge", env, tmp_path / "bridge.log")
    worker = Proc("worker", env, tmp_path / "worker.log")
    tokens = sorted({t.token for t in trades})
    try:
        wait_for(lambda: listed(redis_client, tokens) == len(trades), timeout=120, what="every valid trade applied")
        ends = {p: sent["ends"][p] for p in range(PARTITIONS)}
        wait_for(
            lambda: committed(kafka_broker.bootstrap, kafka_topic, kafka_topic, PARTITIONS) == ends,
            what="every offset committed",
        )
        assert bridge.proc.poll() is None and worker.proc.poll() is None
        assert bridge.terminate() == 0
        assert worker.terminate() == 0
    finally:
        bridge.kill()
        worker.kill()

    dead = dead_letters(redis_client, SHARDS)
    assert sorted((int(d["partition"]), int(d["offset"])) for d in dead) == sorted(hostile_sent)
    assert all(d["source"] == "bridge" and len(d["raw"]) <= 1_000 for d in dead)
    log = bridge.text()
    assert "part crashed" not in log and "Traceback" not in log
    assert "handling failed" not in log  # validation itself rejected every one

    settings = Settings()
    reader = Reader(redis_client, settings)
    at = int(time.time() * 1000)
    for token in tokens:
        want = reference.windows([t for t in trades if t.token == token], at, settings.windows)
        got = reader.read(token, at)
        for w in settings.windows:
            g, r = got.windows[w.label], want[w.label]
            assert (g.buys, g.sells) == (r["buys"], r["sells"]), (token, w.label)
            assert (g.buy_volume, g.sell_volume, g.volume) == (
                r["buy_volume"],
                r["sell_volume"],
                r["volume"],
            ), (token, w.label)
            assert (g.open, g.close) == (r["open"], r["close"]), (token, w.label)
