"""Fault injection with real processes: SIGKILLed workers, crashes between commit and ack,
Redis killed and restarted (with and without AOF), a poison entry, bounded growth.

Workers are ``python -m tradeagg worker`` subprocesses; trades are written to the
shard streams with ``tradeagg.streams.append`` (the bridge has its own tests).
Every wait polls a condition with a deadline; every check compares with the
brute-force reference (tests/reference.py). Counts of injected faults are
printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import redis

from tests.support.bridge_procs import (
    Proc,
    committed,
    dead_letters,
    produce,
    running,
    trade_message,
    wait_for,
)
from tests.support.fault_procs import (
    Feed,
    caught_up,
    mismatches,
    pending,
    reclaim,
    settings_of,
    undelivered,
    wait_groups,
    worker_env,
)
from tests.support.servers import RedisServer
from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.store import streams
from tradeagg.store.connection import connect


def test_sigkill_and_crash_between_commit_and_ack(tmp_path: Path, redis_client, redis_server):
    env = worker_env(redis_server.url)
    crashy = dict(env, TRADEAGG_TEST_CRASH_AFTER_APPLY="0.05")
    s = settings_of(env)
    rng = random.Random(7)
    feed = Feed(seed=7, longest_ms=s.longest_ms)
    procs = [Proc("worker", crashy, tmp_path / f"w{i}.log") for i in range(2)]
    kills = hook_crashes = restarts = 0
    try:
        wait_groups(redis_client, s.shards, 60)  # the workers are up before the first kill
        # at least 12 s of faults, and on until there were 6 kills and a crash after a
        # commit: on a slow machine a worker may take seconds to start (hard limit 180 s)
        started = time.monotonic()

        def enough() -> bool:
            elapsed = time.monotonic() - started
            if elapsed > 180:
                return True
            return elapsed > 12 and kills >= 6 and hook_crashes >= 1

        next_kill = time.monotonic() + rng.uniform(0.8, 1.5)
        while not enough():
            streams.append(redis_client, s, feed.batch(rng.randrange(5, 40)))
            for i, p in enumerate(procs):
                code = p.proc.poll()
                if code is not None:
                    p.kill()
                    hook_crashes += code == 86
                    procs[i] = Proc("worker", crashy, tmp_path / f"w{i}.log")
                    restarts += 1
            ready = [i for i, p in enumerate(procs) if "worker started" in p.text()]
            if time.monotonic() > next_kill and ready:  # kill a worker that got going
                victim = rng.choice(ready)
                procs[victim].kill()  # SIGKILL at a random point
                kills += 1
                procs[victim] = Proc("worker", crashy, tmp_path / f"w{victim}.log")
                restarts += 1
                next_kill = time.monotonic() + rng.uniform(0.8, 1.5)
            time.sleep(rng.uniform(0.0, 0.05))
    finally:
        for p in procs:
            p.kill()
            kills += 1
    left_by_the_dead = pending(redis_client, s.shards)
    # a clean worker takes what was never delivered, then stops cleanly
    with running(Proc("worker", env, tmp_path / "clean.log")) as clean:
        wait_for(lambda: "worker started" in clean.text(), 30, "clean worker up")
        wait_for(lambda: undelivered(redis_client, s.shards) == 0, 60, "undelivered entries")
        wait_for(lambda: pending(redis_client, s.shards) <= left_by_the_dead, 60, "own pending")
    out = reclaim(env)
    print(
        f"\nfaults: SIGKILL={kills} crash-after-commit={hook_crashes} restarts={restarts} "
        f"trades={feed.n} duplicates={feed.duplicates} late={feed.late} "
        f"pending-left-by-dead={left_by_the_dead}\n{out.stdout.strip()}"
    )
    assert kills >= 6 and hook_crashes >= 1
    assert left_by_the_dead > 0 and "claimed=0 " not in out.stdout
    assert pending(redis_client, s.shards) == 0
    assert mismatches(redis_client, s, list(feed.sent.values())) == []
    assert dead_letters(redis_client, s.shards) == []


@pytest.mark.parametrize("aof", [True, False], ids=["aof", "no-persistence"])
def test_redis_killed_and_restarted(tmp_path: Path, aof: bool):
    server = RedisServer(tmp_path, appendonly=aof)
    server.start()
    env = worker_env(server.url)
    s = settings_of(env)
    feed = Feed(seed=11, longest_ms=s.longest_ms)
    client = connect(s)
    try:
        with running(Proc("worker", env, tmp_path / "worker.log")) as worker:
            _redis_killed_and_restarted(client, s, server, worker, feed, aof)
    finally:
        server.stop()


def _redis_killed_and_restarted(client, s, server, worker, feed, aof: bool) -> None:
    wait_groups(client, s.shards)
    before = []
    for _ in range(20):
        batch = feed.batch(30)
        before.extend(batch)
        streams.append(client, s, batch)
    # kill while the worker is busy with the backlog
    wait_for(lambda: pending(client, s.shards) or caught_up(client, s.shards), 30, "reads")
    server.kill()
    wait_for(lambda: "Error" in worker.text() or "error" in worker.text(), 30, "errors")
    time.sleep(1.0)  # stays down a while; the worker must not exit meanwhile
    assert worker.proc.poll() is None
    server.start()
    after = feed.batch(200)
    wait_for(lambda: _append(client, s, after), 30, "redis back")
    wait_groups(client, s.shards, 60)  # recreated by the worker if the server lost them
    wait_for(lambda: caught_up(client, s.shards), 60, "caught up after restart")
    assert worker.proc.poll() is None
    if aof:  # nothing lost, nothing twice
        assert mismatches(client, s, list(feed.sent.values())) == []
    else:  # state lost with the server: what came after is exact, plus at most the entries
        # the worker held when Redis died (their apply is retried in place, into the new
        # server), each once and nothing else
        listed = listed_ids(client, {t.token for t in before + after})
        oldest = now_ms() - s.longest_ms  # late trades (older than every window) are not listed
        assert {t.id for t in after if t.ts >= oldest} <= listed
        assert listed <= {t.id for t in before + after}
        kept = after + [t for t in before if t.id in listed]
        assert mismatches(client, s, kept) == []
    text = worker.text()
    assert "retrying" in text or "part crashed" in text


def listed_ids(client, tokens: set[str]) -> set[str]:
    """The trade ids in the tokens' lists (a list entry's sixth field)."""
    return {
        e.decode().split(" ")[5]
        for t in tokens
        for e in client.lrange(keys.TokenKeys(t).trades, 0, -1)
    }


def _append(client, s, trades) -> bool:
    """Append, or False while the server is not reachable yet (any other error raises)."""
    try:
        streams.append(client, s, trades)
        return True
    except (redis.ConnectionError, redis.TimeoutError):
        return False


POISON = "z" * 44  # base58, and the only token starting with "z"


def test_poison_entry_is_dead_lettered_and_the_shard_flows(
    tmp_path: Path, redis_client, redis_server
):
    # the worker may not touch the poison token's keys: its entry fails every time
    redis_client.acl_setuser(
        "w",
        enabled=True,
        passwords=["+pw"],
        keys=["tradeagg:*", "token:{[^z]*"],
        commands=["+@all"],
    )
    url = redis_server.url.replace("redis://", "redis://w:pw@")
    env = worker_env(url, TRADEAGG_MAX_DELIVERIES="2", TRADEAGG_TOKENS_PER_CALL="1")
    s = settings_of(env)
    shard = keys.shard_of(POISON, s.shards)
    same_shard = [
        t for t in (f"0x{i:040x}" for i in range(1, 200)) if keys.shard_of(t, s.shards) == shard
    ][:5]
    feed = Feed(seed=3, longest_ms=s.longest_ms, tokens=same_shard)
    try:
        with running(Proc("worker", env, tmp_path / "worker.log")) as worker:
            _poison(redis_client, s, feed, worker)
    finally:
        redis_client.acl_deluser("w")


def _poison(redis_client, s, feed: Feed, worker: Proc) -> None:
    first = feed.batch(50)
    streams.append(redis_client, s, first)
    poison = next(iter(Feed(seed=4, longest_ms=s.longest_ms, tokens=[POISON]).batch(1)))
    (poison_id,) = streams.append(redis_client, s, [poison])
    then = feed.batch(50)
    streams.append(redis_client, s, then)
    wait_for(lambda: dead_letters(redis_client, s.shards), 30, "a dead letter")
    wait_for(lambda: caught_up(redis_client, s.shards), 30, "shard flowing")
    dead = dead_letters(redis_client, s.shards)
    assert [d["entry"] for d in dead] == [poison_id]
    assert "delivered 3 times" in dead[0]["reason"] and poison.id in dead[0]["raw"]
    assert mismatches(redis_client, s, list(feed.sent.values())) == []
    assert worker.proc.poll() is None


def test_streams_lists_and_index_stay_bounded(tmp_path: Path, redis_client, redis_server):
    env = worker_env(redis_server.url, TRADEAGG_WINDOWS="1s,3s")
    s = settings_of(env)
    feed = Feed(seed=5, longest_ms=s.longest_ms)
    stream_max = list_max = 0
    with running(Proc("worker", env, tmp_path / "worker.log")):
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            streams.append(redis_client, s, feed.batch(40))
            stream_max = max(
                stream_max, *(redis_client.xlen(keys.stream(i)) for i in range(s.shards))
            )
            list_max = max(
                list_max, *(redis_client.llen(f"token:{{{t}}}:trades") for t in feed.tokens)
            )
            time.sleep(0.02)
        written = feed.n + feed.duplicates
        wait_for(lambda: caught_up(redis_client, s.shards), 30, "caught up")
        assert mismatches(redis_client, s, list(feed.sent.values())) == []
        # quiet now: the keys expire after the longest window; the janitor empties the index
        wait_for(
            lambda: sum(redis_client.zcard(keys.active(i)) for i in range(s.shards)) == 0,
            20,
            "active index emptied",
        )
        wait_for(
            lambda: sum(redis_client.xlen(keys.stream(i)) for i in range(s.shards)) <= s.shards,
            20,
            "streams trimmed",
        )
    per_token_3s = written / len(feed.tokens) * 3 / 8
    print(f"\nbounded: written={written} stream_max={stream_max} list_max={list_max}")
    entries_total = written / s.entry_trades
    assert stream_max < entries_total / 2  # trimmed while running, not at the end
    assert list_max < 3 * per_token_3s  # about a 3s window of trades, not all of them


def test_bridge_and_worker_sigkilled_end_to_end(
    tmp_path: Path, redis_client, redis_server, kafka_broker, kafka_topic
):
    """Kafka → bridge → worker; the bridge SIGKILLed, the worker dies after a commit; exact."""
    env = worker_env(redis_server.url)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap,
        TRADEAGG_KAFKA_TOPIC=kafka_topic,
        TRADEAGG_KAFKA_GROUP=kafka_topic,
    )
    s = settings_of(env)
    feed = Feed(seed=9, longest_ms=s.longest_ms)
    ends = produce(kafka_broker.bootstrap, kafka_topic, map(trade_message, feed.batch(3_000)))
    bridge = Proc("bridge", env, tmp_path / "bridge1.log")
    worker = Proc("worker", dict(env, TRADEAGG_TEST_CRASH_AFTER_APPLY="1"), tmp_path / "w1.log")
    try:
        wait_for(lambda: redis_client.xlen(keys.stream(0)) > 0, 60, "first entries")
        bridge.kill()  # SIGKILL mid-stream: maybe between XADD and offset commit
        wait_for(lambda: worker.proc.poll() is not None, 60, "worker crash after a commit")
        assert worker.proc.returncode == 86
        left = pending(redis_client, s.shards)
        more = produce(kafka_broker.bootstrap, kafka_topic, map(trade_message, feed.batch(1_000)))
        ends = {p: max(ends.get(p, 0), more.get(p, 0)) for p in set(ends) | set(more)}
        bridge = Proc("bridge", env, tmp_path / "bridge2.log")
        worker = Proc("worker", env, tmp_path / "w2.log")

        def all_in() -> bool:
            done = committed(kafka_broker.bootstrap, kafka_topic, kafka_topic, 4)
            return all(done.get(p, -1) >= end for p, end in ends.items()) and (
                undelivered(redis_client, s.shards) == 0 and pending(redis_client, s.shards) <= left
            )

        wait_for(all_in, 90, "every message bridged and delivered")
        assert bridge.terminate() == 0
        assert worker.terminate() == 0
    finally:
        bridge.kill()
        worker.kill()
    out = reclaim(env)
    print(
        f"\nbridge SIGKILL=1, worker crash-after-commit=1, pending left={left}: {out.stdout.strip()}"
    )
    assert left > 0 and pending(redis_client, s.shards) == 0
    assert mismatches(redis_client, s, list(feed.sent.values())) == []
