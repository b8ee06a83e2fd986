"""Property: late entries into a list of thousands (where both insert paths run:
LINSERT after a binary search, and the tail splice) keep the engine equal to
the brute-force reference, batch after batch, as the windows slide."""

from __future__ import annotations

import random

import pytest
import redis

from tests.support.checks import assert_matches_reference
from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import ApplyStatus, Engine
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

TOKEN = "So11111111111111111111111111111111111111112"
BASE = 1_700_000_000_000
S = Settings(windows=parse_windows("5s,20s,1m"), clock="wall")


def trade(rng: random.Random, i: int, ts: int) -> Trade:
    return Trade(
        id=f"t{i}",
        token=TOKEN,
        side=rng.choice(["buy", "sell"]),
        quote_nano=rng.randrange(1, 10**13),
        price=f"{rng.randrange(1, 10**6)}.{rng.randrange(10**4):04d}",
        ts=ts,
        seq=rng.randrange(3),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_late_batches_into_a_long_list_match_the_reference(redis_client: redis.Redis, seed):
    rng = random.Random(seed)
    engine = Engine(redis_client, S)
    reader = Reader(redis_client, S, engine.scripts)
    now = BASE + 50_000
    kept = [trade(rng, i, BASE + i * 10) for i in range(5_000)]  # 10 ms apart: 50 s
    engine.apply_records([t.record for t in kept], now=now)
    scanned = 0
    for step in range(25):
        ages = [rng.randrange(0, 59_000) for _ in range(rng.randrange(1, 5))]
        ages.append(rng.randrange(0, 300))  # lands near the end: the tail splice
        batch = [trade(rng, 10_000 + step * 100 + j, now - a) for j, a in enumerate(ages)]
        batch += rng.sample(kept, 2)  # replays: duplicates
        [r] = engine.apply_records([t.record for t in batch], now=now)
        assert r.status is ApplyStatus.OK, r
        scanned += r.scanned
        kept += batch
        assert_matches_reference(reader, kept, now, S.windows, [TOKEN])
        now += rng.choice([0, 0, 7, 400, 2_500])
    assert scanned > 0  # LINSERT ran (the tail splice runs for every batch's last entry)
    assert redis_client.llen(TokenKeys(TOKEN).trades) > 1_000
