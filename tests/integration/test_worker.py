"""`tradeagg worker` + `tradeagg show --json` against the brute-force reference.

Trades go straight into the shard streams (the bridge's output format), in a
shuffled order with duplicates and whole replayed batches; a real worker
process applies them; `show --json` must print exactly the reference.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import redis

from tests.support import reference
from tests.support.bridge_procs import Proc, env_for, running, wait_for
from tests.support.checks import assert_matches_reference, window_mismatches
from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.devtools.bench import backlog
from tradeagg.devtools.synthetic import SyntheticFeed, to_message
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings
from tradeagg.store.connection import text
from tradeagg.store.streams import append

SHARDS = 4


def worker_env(url: str, **extra: str) -> dict[str, str]:
    return env_for(
        url,
        "127.0.0.1:1",
        "unused",
        TRADEAGG_SHARDS=str(SHARDS),
        TRADEAGG_BLOCK_MS="200",
        TRADEAGG_ENTRY_TRADES="7",
        **extra,
    )


def feed(n: int, seed: int, tokens: int = 30) -> list[Trade]:
    """Trades over the last 70 s, every window gets some, with shuffles and duplicates."""
    rng = random.Random(seed)
    trades = SyntheticFeed(tokens=tokens, seed=seed).trades(n, now_ms() - 70_000, rate=n / 69)
    arrivals = trades + rng.sample(trades, n // 5)
    rng.shuffle(arrivals)
    return arrivals


def show_json(env: dict[str, str], tokens: list[str], at: int) -> dict[str, dict]:
    out = subprocess.run(
        [sys.executable, "-m", "tradeagg", "show", "--json", "--at", str(at), *tokens],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    lines = [json.loads(line, parse_float=Decimal) for line in out.splitlines()]
    assert [d["token"] for d in lines] == tokens and all(d["at"] == at for d in lines)
    return {d["token"]: d["windows"] for d in lines}


def assert_exact(windows: dict[str, dict], trades: list[Trade], at: int, s: Settings) -> None:
    for token, got in windows.items():
        want = reference.windows([t for t in trades if t.token == token], at, s.windows)
        for w in s.windows:
            assert window_mismatches(got[w.label], want[w.label]) == [], (token, w.label)


def drained(client: redis.Redis) -> bool:
    """Every shard stream has the worker's group, and nothing is undelivered or pending."""
    for s in range(SHARDS):
        if not client.exists(keys.stream(s)) or not client.xinfo_groups(keys.stream(s)):
            return False
    return not backlog(client, SHARDS)


def test_worker_and_show_equal_the_reference(redis_server, redis_client, tmp_path: Path) -> None:
    env = worker_env(redis_server.url)
    s = Settings.from_env(env)
    trades = feed(3_000, seed=11)
    half = len(trades) // 2
    append(redis_client, s, trades[:half])
    with running(Proc("worker", env, tmp_path / "worker.log")):
        append(redis_client, s, trades[half:])
        append(redis_client, s, trades[: half // 3])  # a replayed batch
        wait_for(lambda: drained(redis_client), 60, "worker to drain the streams")
        at = now_ms() + 5_000  # ahead of any janitor refresh meanwhile
        tokens = sorted({t.token for t in trades})
        assert_exact(show_json(env, tokens, at), trades, at, s)
        # an unknown token: empty windows, nulls
        empty = show_json(env, ["So11111111111111111111111111111111111111112"], at)
        w = empty["So11111111111111111111111111111111111111112"]["1m"]
        assert (w["buys"], w["volume"], w["open"], w["price_change_pct"]) == (0, 0, None, None)


def test_crash_between_commit_and_ack_counts_nothing_twice(
    redis_server, redis_client, tmp_path: Path
) -> None:
    """The worker dies right after its Lua call committed; the restart re-applies the
    same entries (they are still pending for its consumer name) and the engine finds
    them already listed."""
    env = worker_env(redis_server.url, TRADEAGG_CONSUMER="worker.1")
    s = Settings.from_env(env)
    trades = feed(800, seed=12, tokens=12)
    append(redis_client, s, trades)
    crashing = Proc("worker", {**env, "TRADEAGG_TEST_CRASH_AFTER_APPLY": "1"}, tmp_path / "w1.log")
    assert crashing.proc.wait(60) == 86, crashing.text()[-2000:]
    crashing.kill()
    pending = sum(
        redis_client.xpending(keys.stream(i), keys.STREAM_GROUP)["pending"] for i in range(SHARDS)
    )
    assert pending > 0
    listed = sum(redis_client.llen(f"token:{{{t}}}:trades") for t in {x.token for x in trades})
    assert listed > 0  # the crash came after a commit
    with running(Proc("worker", env, tmp_path / "w2.log")):
        wait_for(lambda: drained(redis_client), 60, "restarted worker to drain")
        at = now_ms() + 5_000  # ahead of any janitor refresh meanwhile
        tokens = sorted({t.token for t in trades})
        assert_exact(show_json(env, tokens, at), trades, at, s)


def test_event_clock_windows_end_at_the_newest_trade(redis_server, redis_client, tmp_path):
    """TRADEAGG_CLOCK=event: replaying last week's trades gives the windows of last week."""
    env = worker_env(redis_server.url, TRADEAGG_CLOCK="event")
    s = Settings.from_env(env)
    week_ago = now_ms() - 7 * 86_400_000
    trades = SyntheticFeed(tokens=5, seed=13).trades(600, week_ago, rate=1)
    append(redis_client, s, trades)
    with running(Proc("worker", env, tmp_path / "worker.log")):
        wait_for(lambda: drained(redis_client), 60, "worker to drain")
    for token in sorted({t.token for t in trades}):
        newest = max(t.ts for t in trades if t.token == token)
        out = subprocess.run(
            [sys.executable, "-m", "tradeagg", "show", "--json", token],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        doc = json.loads(out.stdout, parse_float=Decimal)
        assert doc["at"] == newest  # default --at: the token's own clock
        assert_exact({token: doc["windows"]}, trades, newest, s)
    # --at before last_update is an error (exit 2, one line)
    token = trades[0].token
    plain = {k: v for k, v in env.items() if not k.startswith("GEVENT_")}
    bad = subprocess.run(
        [sys.executable, "-m", "tradeagg", "show", token, "--at", str(week_ago)],
        env=plain,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "earlier than last_update" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_append_cli_writes_the_bridge_format(redis_server, redis_client, tmp_path: Path) -> None:
    """`tradeagg append` validates like the bridge and writes what the worker reads."""
    env = worker_env(redis_server.url)
    s = Settings.from_env(env)
    trades = SyntheticFeed(tokens=8, seed=14).trades(300, now_ms() - 50_000, rate=10)
    lines = [json.dumps(to_message(t)) for t in trades]
    lines[10:10] = ["not json", '{"id": "x"}', json.dumps([to_message(trades[0]), {"id": 1}])]
    path = tmp_path / "trades.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "tradeagg", "append", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    assert out.stdout.strip() == "appended=301 invalid=3 invalid_lines=3"
    assert "line 11: message: not JSON" in out.stderr
    assert "line 13: 1 of 2 elements invalid; element 1: id: a int, not a string" in out.stderr
    with running(Proc("worker", env, tmp_path / "worker.log")):
        wait_for(lambda: drained(redis_client), 60, "worker to drain")
        at = now_ms() + 5_000
        tokens = sorted({t.token for t in trades})
        assert_exact(show_json(env, tokens, at), trades, at, s)


def entries_by_shard(client: redis.Redis) -> dict[int, list[tuple[str, list[str]]]]:
    """Every shard stream's entries: ``(entry id, its records)``, oldest first."""
    out = {}
    for shard in range(SHARDS):
        out[shard] = [
            (eid.decode(), fields[b"t"].decode().split("\n"))
            for eid, fields in client.xrange(keys.stream(shard))
        ]
    return out


def id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def test_sigint_finishes_and_acks_the_batch_in_hand_then_exits_0(
    redis_server, redis_client, tmp_path: Path
) -> None:
    """CONTRACT §4: on SIGINT the worker applies and acks what it was handed, reads no more,
    and exits 0. Afterwards nothing is pending, and the tokens hold exactly the trades of
    the entries delivered to it (no more, no fewer)."""
    env = worker_env(redis_server.url, TRADEAGG_READ_COUNT="2", TRADEAGG_MAINTENANCE_INTERVAL="600")
    s = Settings.from_env(env)
    trades = feed(20_000, seed=17, tokens=40)
    append(redis_client, s, trades)
    snapshot = entries_by_shard(redis_client)  # before the worker (or its janitor) may trim
    total = sum(len(e) for e in snapshot.values())
    worker = Proc("worker", env, tmp_path / "worker.log")
    with running(worker, sig=signal.SIGINT):
        tokens = sorted({t.token for t in trades})
        wait_for(
            lambda: any(redis_client.exists(f"token:{{{t}}}:trades") for t in tokens),
            60,
            "first trades applied",
        )
    delivered: list[str] = []
    n_delivered = 0
    for shard in range(SHARDS):
        assert redis_client.xpending(keys.stream(shard), keys.STREAM_GROUP)["pending"] == 0
        [group] = redis_client.xinfo_groups(keys.stream(shard))
        last = id_order(text(group["last-delivered-id"]))
        for eid, records in snapshot[shard]:
            if id_order(eid) <= last:
                n_delivered += 1
                delivered += records
    assert 0 < n_delivered < total, "the signal must come while entries are still to read"
    sent = {t.record: t for t in trades}  # the stream holds each trade's record (entry codec)
    kept = [sent[r] for r in delivered]
    listed = {
        t: {e.decode().split(" ")[5] for e in redis_client.lrange(f"token:{{{t}}}:trades", 0, -1)}
        for t in tokens
    }
    assert listed == {t: {x.id for x in kept if x.token == t} for t in tokens}
    at = now_ms() + 5_000
    assert_matches_reference(Reader(redis_client, s), kept, at, s.windows, tokens)


def test_a_live_worker_reclaims_a_dead_consumers_entries_after_the_idle_time(
    redis_server, redis_client, tmp_path: Path
) -> None:
    """Entries a consumer took and never acked (it died) are claimed by a running worker once
    they have been idle TRADEAGG_RECLAIM_IDLE_MS, applied exactly once, and acked."""
    idle_ms = 2_000
    env = worker_env(redis_server.url, TRADEAGG_RECLAIM_IDLE_MS=str(idle_ms))
    s = Settings.from_env(env)
    trades = feed(600, seed=19)
    append(redis_client, s, trades)
    taken_at = time.monotonic()
    held = 0
    for shard in range(SHARDS):  # a consumer reads everything, then dies
        redis_client.xgroup_create(keys.stream(shard), keys.STREAM_GROUP, id="0")
        [(_name, entries)] = redis_client.xreadgroup(
            keys.STREAM_GROUP, "dead", {keys.stream(shard): ">"}
        )
        held += len(entries)
    assert held > 0

    def dead_pending() -> int:
        return sum(
            c["pending"]
            for shard in range(SHARDS)
            for c in redis_client.xinfo_consumers(keys.stream(shard), keys.STREAM_GROUP)
            if text(c["name"]) == "dead"
        )

    assert dead_pending() == held
    with running(Proc("worker", env, tmp_path / "worker.log")):
        wait_for(lambda: dead_pending() == 0, 60, "the dead consumer's entries claimed")
        claimed_after = time.monotonic() - taken_at
        wait_for(lambda: drained(redis_client), 60, "claimed entries applied and acked")
        at = now_ms() + 5_000
        tokens = sorted({t.token for t in trades})
        assert_matches_reference(Reader(redis_client, s), trades, at, s.windows, tokens)
    assert claimed_after >= idle_ms / 1000  # never claimed before they were idle that long
