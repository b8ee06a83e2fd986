"""Helpers for fault-injection tests: a trade feed with duplicates and late trades, checks."""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

from tests.support.bridge_procs import env_for, wait_for
from tests.support.checks import reference_mismatches
from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings
from tradeagg.store.connection import text

TOKENS = [f"0x{i:040x}" for i in range(1, 25)]


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    base = {
        "TRADEAGG_SHARDS": "3",
        "TRADEAGG_WINDOWS": "3s,1m",
        "TRADEAGG_MAINTENANCE_INTERVAL": "0.2",
        "TRADEAGG_STALE_AFTER": "0.3",
        "TRADEAGG_BLOCK_MS": "200",
        "TRADEAGG_READ_COUNT": "16",
        "TRADEAGG_ENTRY_TRADES": "8",
        "TRADEAGG_HEARTBEAT_INTERVAL": "1",
        "TRADEAGG_RECLAIM_IDLE_MS": "60000",
    }
    base.update(extra)
    return env_for(redis_url, "127.0.0.1:1", "unused", **base)


def settings_of(env: dict[str, str]) -> Settings:
    return Settings.from_env({k: v for k, v in env.items() if k.startswith(("TRADEAGG_", "REDIS"))})


WALLETS = [f"0x{k:040x}" for k in range(1, 9)]  # traders: windows share some


class Feed:
    """Trades near the wall clock, sent out of order, with re-sent duplicates and late ones.

    ``sent`` keeps every distinct trade ever written: the brute-force reference
    over it, at any instant, is what the aggregates must equal. Late trades
    (older than the longest window) are sent too; they are outside every
    window at any later instant, so the reference ignores them by itself.
    """

    def __init__(self, seed: int, longest_ms: int, tokens: list[str] = TOKENS) -> None:
        self.rng = random.Random(seed)
        self.longest_ms = longest_ms
        self.tokens = tokens
        self.sent: dict[str, Trade] = {}
        self.n = 0
        self.duplicates = 0
        self.late = 0

    def batch(self, size: int) -> list[Trade]:
        rng, now = self.rng, now_ms()
        out: list[Trade] = []
        for _ in range(size):
            roll = rng.random()
            if roll < 0.1 and self.sent:
                out.append(rng.choice(list(self.sent.values())[-200:]))
                self.duplicates += 1
                continue
            self.n += 1
            ts = now - rng.randrange(0, 1_500)  # out of order within the windows
            if roll > 0.97:
                ts = now - self.longest_ms - 1_000 - rng.randrange(0, 5_000)
                self.late += 1
            t = Trade(
                id=f"f{self.n}",
                token=rng.choice(self.tokens),
                side=rng.choice(("buy", "sell")),
                quote_nano=rng.randrange(1, 10**12),
                price=f"{rng.randrange(1, 10**6)}.{rng.randrange(0, 1000):03d}",
                ts=ts,
                seq=rng.randrange(0, 3),
                trader=rng.choice(WALLETS),  # what the bridge validates (to_message)
            )
            self.sent[t.id] = t
            out.append(t)
        return out


def pending(client: Any, shards: int) -> int:
    """Entries delivered to some consumer and not acked yet, over every shard.

    Any error raises: a missing stream or group is a failure, not 0 pending
    (call ``wait_groups`` first where a worker may not have created them yet).
    """
    return sum(
        client.xpending(keys.stream(shard), keys.STREAM_GROUP)["pending"] for shard in range(shards)
    )


def groups_exist(client: Any, shards: int) -> bool:
    """Every shard stream has the workers' consumer group."""
    for shard in range(shards):
        stream = keys.stream(shard)
        if not client.exists(stream):
            return False
        names = {text(g["name"]) for g in client.xinfo_groups(stream)}
        if keys.STREAM_GROUP not in names:
            return False
    return True


def wait_groups(client: Any, shards: int, timeout: float = 30.0) -> None:
    """Wait until a worker has created the consumer group of every shard stream."""
    wait_for(lambda: groups_exist(client, shards), timeout, "consumer groups on every shard")


def undelivered(client: Any, shards: int) -> int:
    """Entries some group has not been handed yet (0 when caught up)."""
    total = 0
    for shard in range(shards):
        stream = keys.stream(shard)
        if not client.exists(stream):
            continue
        last = client.xrevrange(stream, count=1)
        groups = client.xinfo_groups(stream)
        if not groups:
            return 1
        if last and groups[0]["last-delivered-id"] != last[0][0]:
            total += 1
    return total


def caught_up(client: Any, shards: int) -> bool:
    """Every entry delivered and acknowledged."""
    return undelivered(client, shards) == 0 and pending(client, shards) == 0


def mismatches(client: Any, settings: Settings, trades: list[Trade]) -> list[str]:
    """Tokens whose windows differ from the brute-force reference, as of just after now.

    A little ahead of now: a janitor pass may stamp a token's last_update
    between taking the instant and reading it, and an explicit instant before
    last_update is refused.
    """
    at = now_ms() + 2_000
    tokens = sorted({t.token for t in trades})
    return reference_mismatches(Reader(client, settings), trades, at, settings.windows, tokens)


def reclaim(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`tradeagg reclaim --min-idle-ms 0`, which must exit 0."""
    out = subprocess.run(
        [sys.executable, "-m", "tradeagg", "reclaim", "--min-idle-ms", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out
