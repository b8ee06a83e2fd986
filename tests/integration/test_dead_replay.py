"""`tradeagg dead list|show|replay` with real processes (issue 10).

A misconfigured worker (its Redis user may not touch one token's keys, and
one delivery is all an entry gets) sends that token's entries to the dead
letters as poison; the bridge's kind of dead letter is written as the bridge
writes it. After the fix, `tradeagg dead replay` re-injects both kinds
through their source's validation, a correctly configured worker applies
them, and every trade is exact against the brute-force reference; a second
replay changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tests.support.bridge_procs import Proc, dead_letters, running, wait_for
from tests.support.fault_procs import (
    TOKENS,
    Feed,
    caught_up,
    mismatches,
    settings_of,
    worker_env,
)
from tradeagg.contract import keys
from tradeagg.devtools.synthetic import to_message
from tradeagg.store import streams

POISON = "z" * 44  # base58, and the only token starting with "z"


def dead(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tradeagg", "dead", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_dead_letters_replayed_after_a_fix_are_exact(tmp_path: Path, redis_client, redis_server):
    redis_client.acl_setuser(
        "w",
        enabled=True,
        passwords=["+pw"],
        keys=["tradeagg:*", "token:{[^z]*"],
        commands=["+@all"],
    )
    env = worker_env(redis_server.url, TRADEAGG_WINDOWS="3s,5m")
    bad_env = worker_env(
        redis_server.url.replace("redis://", "redis://w:pw@"),
        TRADEAGG_WINDOWS="3s,5m",
        TRADEAGG_MAX_DELIVERIES="1",
        TRADEAGG_TOKENS_PER_CALL="1",
    )
    s = settings_of(env)
    feed = Feed(seed=8, longest_ms=s.longest_ms, tokens=[POISON, *TOKENS[:3]])
    try:
        with running(Proc("worker", bad_env, tmp_path / "bad-worker.log")):
            for _ in range(4):
                streams.append(redis_client, s, feed.batch(25))
            wait_for(lambda: caught_up(redis_client, s.shards), 60, "poison entries dead-lettered")
    finally:
        redis_client.acl_deluser("w")
    poisoned = dead_letters(redis_client, s.shards)
    assert poisoned and all(d["source"] == "worker" for d in poisoned)
    # the bridge's kind: raw JSON with its reason (here: a topic consumed by mistake)
    lost = Feed(seed=9, longest_ms=s.longest_ms, tokens=TOKENS[3:5]).batch(12)
    # as the bridge validates them: to_message gives a trade of no trader its token as trader
    lost = [
        replace(t, id=f"lost-{t.id}", trader=t.trader or t.token)
        for t in {t.id: t for t in lost}.values()
    ]
    for t in lost[:6]:
        redis_client.xadd(
            keys.dead(0), {"reason": "x", "source": "bridge", "raw": json.dumps(to_message(t))}
        )
    redis_client.xadd(
        keys.dead(1),
        {"reason": "x", "source": "bridge", "raw": json.dumps([to_message(t) for t in lost[6:]])},
    )
    redis_client.xadd(
        keys.dead(1), {"reason": "message: not JSON", "source": "bridge", "raw": "{nope"}
    )
    letters = len(poisoned) + 8
    listed = [json.loads(line) for line in dead(env, "list", "--json").splitlines()]
    assert len(listed) == letters and {x["source"] for x in listed} == {"worker", "bridge"}
    first = listed[0]
    assert f"id: {first['id']}" in dead(env, "show", first["id"], "--shard", str(first["shard"]))

    with running(Proc("worker", env, tmp_path / "worker.log")):
        figures = json.loads(dead(env, "replay", "--json"))
        assert (figures["letters"], figures["replayed"], figures["invalid"]) == (
            letters,
            letters - 1,
            1,
        )
        wait_for(lambda: caught_up(redis_client, s.shards), 60, "replayed trades applied")
        everything = list(feed.sent.values()) + lost
        assert mismatches(redis_client, s, everything) == []
        assert sum(1 for t in feed.sent.values() if t.token == POISON) > 0
        again = json.loads(dead(env, "replay", "--json"))
        assert again == figures  # the same letters, the same counts
        wait_for(lambda: caught_up(redis_client, s.shards), 60, "second replay applied")
        assert mismatches(redis_client, s, everything) == []
        assert len(dead_letters(redis_client, s.shards)) == letters  # replay keeps them
