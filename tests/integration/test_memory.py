"""Issue 11: Redis memory per kept trade stays <= 150 B with Solana-length ids
and a trader per trade (the list element carries its 8-character digest).

MEMORY USAGE with SAMPLES 0 counts every element of a key: for the same
trades applied the same way it gives the same bytes (it is not a timing), so
a bound on it holds the layout (list element, id index) to its budget.
``benchmarks/bench_memory.py`` prints the figures per key, before and after.
"""

from __future__ import annotations

import random
from dataclasses import replace

import redis

from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.settings import Settings

A = "So11111111111111111111111111111111111111112"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BUDGET = 150  # bytes per kept trade (issue 11)


def solana_like(n: int, seed: int = 3, wallets: int = 2_000) -> list[Trade]:
    """n trades over 55 minutes of 400 ms blocks: 88-char signature + ':<ix>' ids,
    seq up to 2,000, quotes 0.05-20 SOL in nano units, prices 1e-6 .. 12.5,
    traders among ``wallets`` 44-char addresses (every element carries a digest)."""
    rng = random.Random(seed)
    traders = ["".join(rng.choice(BASE58) for _ in range(44)) for _ in range(wallets)]
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
                trader=rng.choice(traders),
            )
        )
    return out


def usage(client: redis.Redis, metrics: str) -> tuple[int, dict[str, int], dict[str, int]]:
    """20,000 trades applied in batches of 1,000; returns the trades kept and the
    bytes of the token's keys (its four keys of CONTRACT §3 and its id index) and
    of the screener's five sets (empty with ``seed``)."""
    engine = Engine(client, replace(Settings(), metrics=metrics))
    trades = solana_like(20_000)
    for i in range(0, len(trades), 1_000):
        part = trades[i : i + 1_000]
        [r] = engine.apply_records([t.record for t in part], now=part[-1].ts)
        assert r.applied == len(part) and not r.failed
    k = TokenKeys(A)
    kept = client.llen(k.trades)
    assert kept == len(trades)

    def size(key: str) -> int:
        return client.memory_usage(key, samples=0) or 0

    return (
        kept,
        {key: size(key) for key in [*k.all(), k.ids]},
        {key: size(key) for key in k.screener()},
    )


def test_a_kept_trade_costs_at_most_150_bytes(redis_client: redis.Redis) -> None:
    """TRADEAGG_METRICS=seed: the list, indices, aggregates, last_update and id index."""
    kept, used, sets = usage(redis_client, "seed")
    per_trade = sum(used.values()) / kept
    assert per_trade <= BUDGET, (per_trade, {key: b / kept for key, b in used.items()})
    assert sum(sets.values()) == 0


def test_with_the_screener_the_same_keys_cost_the_same(redis_client: redis.Redis) -> None:
    """TRADEAGG_METRICS=full keeps the same token keys within the budget; the five
    sorted sets come on top, per distinct trader (``bench_memory.py`` prints them)."""
    kept, used, sets = usage(redis_client, "full")
    per_trade = sum(used.values()) / kept
    assert per_trade <= BUDGET, (per_trade, {key: b / kept for key, b in used.items()})
    assert all(sets.values())  # the sets are there, and not counted in the budget
