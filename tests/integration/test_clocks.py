"""One clock (CONTRACT §2, issue 11): workers whose clocks disagree by minutes
give the reference's result; no last_update lies in the future."""

from __future__ import annotations

import random

import redis

from tests.support.checks import assert_matches_reference
from tradeagg.contract.keys import TokenKeys
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import ApplyStatus, Engine, now_ms
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

MINUTE = 60_000


def test_workers_with_skewed_clocks_give_the_reference(redis_client: redis.Redis) -> None:
    """A worker 5 minutes fast and one 3 minutes slow share tokens with a correct one
    (the Engine's clock is the worker's clock seam); live calls (no explicit now)."""
    s = Settings(windows=parse_windows("1m,2m"), clock="wall")
    offsets = (0, 5 * MINUTE, -3 * MINUTE)
    engines = [Engine(redis_client, s, clock=lambda o=o: now_ms() + o) for o in offsets]
    start = now_ms() - 100_000
    trades = SyntheticFeed(tokens=6, seed=11).trades(900, start, rate=9)
    rng = random.Random(5)
    for i in range(0, len(trades), 30):
        batch = trades[i : i + 30]
        rng.shuffle(batch)
        results = rng.choice(engines).apply_records([t.record for t in batch])
        assert all(r.status is ApplyStatus.OK and r.late == 0 for r in results), results
    at = now_ms()
    tokens = sorted({t.token for t in trades})
    for token in tokens:
        last_update = int(redis_client.get(TokenKeys(token).last_update))
        assert last_update <= at, (token, last_update - at)
    assert_matches_reference(Reader(redis_client, s), trades, at, s.windows, tokens)


def test_an_explicit_instant_is_not_clamped(redis_client: redis.Redis) -> None:
    """Tests and tools may ask for an instant ahead of Redis' clock ("at")."""
    s = Settings(windows=parse_windows("1m,2m"), clock="wall")
    engine = Engine(redis_client, s)
    ahead = now_ms() + 10 * MINUTE
    token = "So11111111111111111111111111111111111111112"
    [r] = engine.apply_records([f"{token} {ahead - 1000} 0 b 1000000000 2 x"], now=ahead)
    assert (r.applied, r.last_update) == (1, ahead)
