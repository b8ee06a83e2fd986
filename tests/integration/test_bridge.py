"""The bridge against a real Kafka-protocol broker (Tansu) and a real redis-server.

The bridge runs as ``python -m tradeagg bridge`` (gevent-patched, as in production).
"""

from __future__ import annotations

import json
import random
import re
import signal
import time
from collections import Counter

import pytest

from tests.support.bridge_procs import (
    Proc,
    committed,
    dead_letters,
    env_for,
    produce,
    read_back,
    running,
    stream_records,
    trade_message,
    wait_for,
)
from tradeagg.contract import keys
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.runtime.bridge import INVALID_BURST, INVALID_WINDOW_S

SHARDS = 4
PARTITIONS = 4
TOKEN = "So11111111111111111111111111111111111111112"


def now_ms() -> int:
    return int(time.time() * 1000)


def bad_element(kind: str, ts: int) -> dict:
    base = {
        "id": f"bad-{kind}",
        "token": TOKEN,
        "side": "buy",
        "amount": "1",
        "quote": "1",
        "price": "1",
        "ts": ts,
        "trader": TOKEN,
    }
    broken = {
        "nan": {"quote": "NaN"},
        "inj-brace": {"token": TOKEN[:-1] + "}"},
        "inj-space": {"token": TOKEN[:10] + " " + TOKEN[11:]},
        "future": {"ts": ts + 3_600_000},
        "bool": {"quote": True},
        "ctrl": {"id": "a\x07b"},
        "huge-id": {"id": "x" * 100_000},
        "type": {"side": 1},
    }[kind]
    base.update(broken)
    return base


BAD_KINDS = ["nan", "inj-brace", "inj-space", "future", "bool", "ctrl", "huge-id", "type"]


@pytest.fixture
def env(redis_server, redis_client, kafka_broker, kafka_topic):
    return env_for(redis_server.url, kafka_broker.bootstrap, kafka_topic)


def test_valid_invalid_arrays_duplicates_out_of_order(
    env, redis_client, kafka_broker, kafka_topic, tmp_path
):
    now = now_ms()
    trades = SyntheticFeed(tokens=30, seed=3).trades(600, now - 600_000, 50)
    singles, in_arrays = trades[:400], trades[400:]
    messages = [trade_message(t) for t in singles]
    messages += [trade_message(t) for t in random.Random(1).sample(singles, 50)]  # duplicates
    random.Random(2).shuffle(messages)  # out of order
    arrays = 0  # each with two bad elements: one dead letter per message
    for i in range(0, len(in_arrays), 20):
        body = [json.loads(trade_message(t)[1]) for t in in_arrays[i : i + 20]]
        body.insert(3, bad_element(BAD_KINDS[(i // 20) % len(BAD_KINDS)], now))
        body.insert(9, 42)
        arrays += 1
        messages.append((None, json.dumps(body).encode()))
    invalid_messages = [
        b"not json",
        b"",
        b'{"quote": NaN}',
        b'"a string"',
        b"\xff\xfe\x00{",
        b"[" + b" " * (5 << 20) + b"]",  # 5 MiB
        *(json.dumps(bad_element(k, now)).encode() for k in BAD_KINDS),
    ]
    messages += [(None, v) for v in invalid_messages]
    ends = produce(kafka_broker.bootstrap, kafka_topic, messages)

    bridge = Proc("bridge", env, tmp_path / "bridge.log")
    try:
        want = {t.record for t in trades}
        expected_dead = len(invalid_messages) + arrays
        wait_for(
            lambda: (
                {r for _, _, r in stream_records(redis_client, SHARDS)} >= want
                and len(dead_letters(redis_client, SHARDS)) >= expected_dead
            ),
            what="all valid trades and dead letters",
        )
        # everything consumed is committed before the process can stop
        wait_for(
            lambda: (
                committed(kafka_broker.bootstrap, kafka_topic, kafka_topic, PARTITIONS)
                == {p: ends.get(p, -1001) for p in range(PARTITIONS)}
            ),
            what="offsets committed",
        )
        # lines skipped by the rate limit are counted in a summary once its window ends
        wait_for(lambda: "lines suppressed" in bridge.text(), timeout=3 * INVALID_WINDOW_S)
        assert bridge.terminate(timeout=30) == 0
    finally:
        bridge.kill()

    records = stream_records(redis_client, SHARDS)
    assert {r for _, _, r in records} == want  # nothing invalid got through
    for shard, _eid, record in records:
        assert shard == keys.shard_of(record.split(" ", 1)[0], SHARDS)
    dead = dead_letters(redis_client, SHARDS)
    assert len(dead) == expected_dead
    reasons = Counter(d["reason"].split(":")[0] for d in dead)
    in_array = [d for d in dead if d["elements"] == "22"]
    assert len(in_array) == arrays
    for d in in_array:  # one dead letter: both reasons, both elements, the count
        assert (d["invalid"], d["index"]) == ("2", "3"), d
        assert d["reasons"].split("\n")[1] == "9: element: a int, not an object"
        if d["truncated"] == "0":  # the rejected elements, as a message to send again
            assert json.loads(d["raw"])[1] == 42
        else:  # the 100,000-character id does not fit
            assert d["reason"].startswith("id:") and len(d["raw"]) == 1000
    assert reasons["message"] == 6
    assert reasons["ts"] >= 2 and reasons["token"] >= 2 and reasons["quote"] >= 2
    big = next(d for d in dead if "bytes, over" in d["reason"])
    assert len(big["raw"]) <= 1000 and big["topic"] == kafka_topic and int(big["offset"]) >= 0
    log = bridge.text()
    # logfmt (tradeagg/logs.py): the message text in msg="...", its context pairs after it
    lines = log.count('msg="invalid input" topic=')  # one per bad message, rate-limited
    assert 0 < lines <= 2 * INVALID_BURST < expected_dead
    accounted = lines + sum(int(n) for n in re.findall(r"suppressed_before=(\d+)", log))
    summaries = re.findall(r'msg="invalid input lines suppressed" suppressed=(\d+)', log)
    assert summaries  # waited for above
    accounted += sum(int(n) for n in summaries)
    assert accounted == expected_dead  # every bad message is in the log, as a line or a count
    assert "partition=" in log and "offset=" in log
    assert "Traceback" not in log
    assert committed(kafka_broker.bootstrap, kafka_topic, kafka_topic, PARTITIONS) == {
        p: ends.get(p, -1001) for p in range(PARTITIONS)
    }


def test_kill_9_mid_stream_then_restart_loses_nothing(
    env, redis_client, kafka_broker, kafka_topic, tmp_path
):
    trades = SyntheticFeed(tokens=200, seed=5).trades(30_000, now_ms() - 1_200_000, 1000)
    produce(kafka_broker.bootstrap, kafka_topic, (trade_message(t) for t in trades))
    first = Proc("bridge", env, tmp_path / "bridge1.log")
    try:
        wait_for(lambda: redis_client.xlen(keys.stream(0)) > 0, what="first entries")
    finally:
        first.kill()  # SIGKILL: mid-stream, maybe between XADD and commit
    seen_at_kill = len(stream_records(redis_client, SHARDS))
    second = Proc("bridge", env, tmp_path / "bridge2.log")
    try:
        want = {t.record for t in trades}
        wait_for(
            lambda: {r for _, _, r in stream_records(redis_client, SHARDS)} >= want,
            timeout=90,
            what="every trade after the restart",
        )
        assert second.terminate() == 0
    finally:
        second.kill()
    records = [r for _, _, r in stream_records(redis_client, SHARDS)]
    assert set(records) == want
    print(f"records at kill: {seen_at_kill}; after restart: {len(records)} for {len(trades)}")


def test_backpressure_pauses_until_workers_catch_up(
    redis_server, redis_client, kafka_broker, kafka_topic, tmp_path
):
    env = env_for(
        redis_server.url,
        kafka_broker.bootstrap,
        kafka_topic,
        TRADEAGG_MAX_BACKLOG="100",
        TRADEAGG_ENTRY_TRADES="1",
    )
    feed = SyntheticFeed(tokens=20, seed=9)
    first = feed.trades(150, now_ms() - 300_000, 100)
    second = feed.trades(500, now_ms() - 200_000, 100)
    produce(kafka_broker.bootstrap, kafka_topic, (trade_message(t) for t in first))
    bridge = Proc("bridge", env, tmp_path / "bridge.log")
    try:
        wait_for(lambda: "paused" in bridge.text(), what="the bridge to pause")
        produce(kafka_broker.bootstrap, kafka_topic, (trade_message(t) for t in second))
        streams = [keys.stream(shard) for shard in range(SHARDS)]
        for stream in streams:
            redis_client.xgroup_create(stream, keys.STREAM_GROUP, id="0", mkstream=True)

        def play_workers() -> None:
            """Acknowledge every entry there is, as workers would."""
            for stream in streams:
                for _s, entries in redis_client.xreadgroup(keys.STREAM_GROUP, "t", {stream: ">"}):
                    if entries:
                        redis_client.xack(stream, keys.STREAM_GROUP, *[e for e, _ in entries])

        sec, usec = redis_client.time()
        drained_at = sec * 1000 + usec // 1000
        play_workers()
        wait_for(lambda: "resumed" in bridge.text(), what="the bridge to resume")
        want = {t.record for t in first + second}

        def all_there() -> bool:
            play_workers()
            return {r for _, _, r in stream_records(redis_client, SHARDS)} >= want

        wait_for(all_there, what="the second batch")
        assert bridge.terminate() == 0
    finally:
        bridge.kill()
    late = {t.record for t in second}
    for _shard, eid, record in stream_records(redis_client, SHARDS):
        if record in late:  # nothing of the second batch was written while paused
            assert int(eid.split("-")[0]) >= drained_at, record


def test_sigint_finishes_the_batch_in_hand_commits_and_exits_0(
    env, redis_client, kafka_broker, kafka_topic, tmp_path
):
    """CONTRACT §4: on SIGINT mid-stream the bridge writes and commits what it holds and
    exits 0: the streams then hold exactly the trades of the messages below the committed
    offsets (nothing written is left uncommitted, nothing committed is missing)."""
    trades = SyntheticFeed(tokens=100, seed=23).trades(30_000, now_ms() - 1_200_000, 1000)
    by_id = {t.id: t for t in trades}
    assert len(by_id) == len(trades)
    ends = produce(kafka_broker.bootstrap, kafka_topic, (trade_message(t) for t in trades))
    with running(Proc("bridge", env, tmp_path / "bridge.log"), sig=signal.SIGINT):
        wait_for(
            lambda: any(redis_client.xlen(keys.stream(s)) for s in range(SHARDS)),
            what="first entries",
        )
    done = {
        p: max(o, 0)
        for p, o in committed(kafka_broker.bootstrap, kafka_topic, kafka_topic, PARTITIONS).items()
    }
    assert 0 < sum(done.values()) < len(trades), "the signal must come mid-stream"
    messages = read_back(kafka_broker.bootstrap, kafka_topic, ends)
    want = {
        by_id[json.loads(value)["id"]].record
        for (p, offset), value in messages.items()
        if offset < done.get(p, 0)
    }
    assert {r for _, _, r in stream_records(redis_client, SHARDS)} == want


def test_bridge_dead_letters_are_capped(
    redis_server, redis_client, kafka_broker, kafka_topic, tmp_path
):
    """TRADEAGG_DEAD_LETTER_MAX caps each tradeagg:{sN}:dead stream (approximate MAXLEN:
    whole stream nodes), while every invalid message is still consumed and committed."""
    env = env_for(
        redis_server.url, kafka_broker.bootstrap, kafka_topic, TRADEAGG_DEAD_LETTER_MAX="10"
    )
    n = 2_000
    ends = produce(
        kafka_broker.bootstrap, kafka_topic, ((None, f"not json {i}".encode()) for i in range(n))
    )
    with running(Proc("bridge", env, tmp_path / "bridge.log")):
        wait_for(
            lambda: (
                committed(kafka_broker.bootstrap, kafka_topic, kafka_topic, PARTITIONS)
                == {p: ends.get(p, -1001) for p in range(PARTITIONS)}
            ),
            what="every invalid message consumed and committed",
        )
    node = int(redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"])
    lengths = [redis_client.xlen(keys.dead(s)) for s in range(SHARDS)]
    assert sum(lengths) >= 10 and all(x < 10 + node for x in lengths), lengths
    newest = {
        fields[b"raw"]
        for s in range(SHARDS)
        for _, fields in redis_client.xrevrange(keys.dead(s), count=1)
    }
    assert newest <= {f"not json {i}".encode() for i in range(n)}
    assert stream_records(redis_client, SHARDS) == []
