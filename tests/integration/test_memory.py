"""Issue 11: Redis memory per kept trade stays <= 150 B with Solana-length ids.

MEMORY USAGE with SAMPLES 0 counts every element of a key: for the same
trades applied the same way it gives the same bytes (it is not a timing), so
a bound on it holds the layout (list element, id index) to its budget.
``benchmarks/bench_memory.py`` prints the figures per key, before and after.
"""

from __future__ import annotations

import random

import redis

from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.settings import Settings

A = "So11111111111111111111111111111111111111112"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BUDGET = 150  # bytes per kept trade (issue 11)


def solana_like(n: int, seed: int = 3) -> list[Trade]:
    """n trades over 55 minutes of 400 ms blocks: 88-char signature + ':<ix>' ids,
    seq up to 2,000, quotes 0.05-20 SOL in nano units, prices 1e-6 .. 12.5."""
    rng = random.Random(seed)
    base, out = 1_700_000_000_000, []
    for i in range(n):
        block = i * 8_250 // n
        ident = "".join(rng.choice(BASE58) for _ in range(88)) + f":{rng.randrange(6)}"
        out.append(
            Trade(
                id=ident,
                token=A,
                side=rng.choice(("buy", "sell")),
                quote_nano=int(10 ** rng.uniform(7.7, 10.3)),
                price=f"{10 ** rng.uniform(-5.9, 1.09):.6f}".rstrip("0").rstrip(".") or "0.000001",
                ts=base + block * 400,
                seq=i % 2_000,
            )
        )
    return out


def test_a_kept_trade_costs_at_most_150_bytes(redis_client: redis.Redis) -> None:
    engine = Engine(redis_client, Settings())
    trades = solana_like(20_000)
    for i in range(0, len(trades), 1_000):
        part = trades[i : i + 1_000]
        [r] = engine.apply_records([t.record for t in part], now=part[-1].ts)
        assert r.applied == len(part) and not r.failed
    k = TokenKeys(A)
    kept = redis_client.llen(k.trades)
    assert kept == len(trades)
    used = {key: redis_client.memory_usage(key, samples=0) or 0 for key in [*k.all(), k.ids]}
    per_trade = sum(used.values()) / kept
    assert per_trade <= BUDGET, (per_trade, {key: b / kept for key, b in used.items()})
