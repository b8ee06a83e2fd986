"""Rolling deploys (issue 11): releases with different TRADEAGG_WINDOWS share tokens.

Two releases alternate on the same tokens for hours of simulated time: no call
rebuilds a token, every window a token carries keeps sliding, a window added
later than the list was kept for reports itself partial until it has been open
its full length, and every window not partial equals the brute-force reference.
"""

from __future__ import annotations

import random

from tests.support import reference
from tests.support.checks import window_mismatches
from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"
B = "0x" + "ab" * 20
MIN = 60_000
HOUR = 60 * MIN
EXACT = 24 * HOUR  # TRADEAGG_EXACT_HORIZON: these windows are all exact (the list's)
OLD = Settings(windows=parse_windows("1m,5m,1h"), exact_horizon_ms=EXACT)
NEW = Settings(windows=parse_windows("1m,5m,15m,1h,4h"), exact_horizon_ms=EXACT)


def batch(rng: random.Random, at: int, start: int, n: int) -> list[Trade]:
    """``n`` trades of the last 10 minutes before ``at`` (some a few minutes late)."""
    return [
        Trade(
            id=f"t{start + i}",
            token=rng.choice((A, B)),
            side=rng.choice(("buy", "sell")),
            quote_nano=rng.randrange(1, 10**12),
            price=str(rng.randrange(1, 10**6) / 1000),
            ts=at - rng.randrange(0, 10 * MIN),
            seq=rng.randrange(3),
        )
        for i in range(n)
    ]


def test_alternating_window_sets_neither_rebuild_nor_lose_windows(redis_client) -> None:
    rng = random.Random(11)
    engines = {"old": Engine(redis_client, OLD), "new": Engine(redis_client, NEW)}
    readers = {"old": Reader(redis_client, OLD), "new": Reader(redis_client, NEW)}
    t0 = 1_700_000_000_000
    trades: list[Trade] = []
    # 2 h with the old release only, then both alternating call by call for 5 h
    steps = [(t0 + k * 5 * MIN, "old") for k in range(24)]
    steps += [(t0 + 2 * HOUR + k * 5 * MIN, ("new", "old")[k % 2]) for k in range(61)]
    added_at = t0 + 2 * HOUR  # the first call of the new release
    seen_partial = seen_complete = 0
    # the 4h window came when the list held the last hour as of the step before (trimmed
    # then): it counts all it should 4 h after that hour's start. Before, a reader
    # configured with it counts it from the list kept for 1 h as of now.
    complete = added_at - 5 * MIN - HOUR + 4 * HOUR
    for k, (at, release) in enumerate(steps):
        fresh = batch(rng, at, 40 * k, 40)
        results = engines[release].apply_records([t.record for t in fresh], now=at)
        results += engines[release].advance([A, B], now=at)
        assert [(r.rebuilt, r.reason) for r in results if r.rebuilt >= 0 or r.reason] == []
        # what the engine took: not the trades older than the token's longest window
        longest = HOUR if at < added_at else 4 * HOUR
        trades += [t for t in fresh if t.ts > at - longest]
        for name, reader in readers.items():
            ws = (OLD if name == "old" else NEW).windows
            for token in (A, B):
                want = reference.windows([t for t in trades if t.token == token], at, ws)
                view = reader.read(token, at)
                for w in ws:
                    got = view.windows[w.label]
                    if w.label == "4h" and at < complete:
                        assert got.complete_from == (
                            at + 3 * HOUR if at < added_at else complete
                        ), at
                        assert got.trades <= want[w.label]["buys"] + want[w.label]["sells"]
                        seen_partial += 1
                        continue
                    assert not got.partial, (at, token, w.label)
                    assert window_mismatches(got, want[w.label]) == [], (at, token, w.label)
                    seen_complete += w.label == "4h"
    assert seen_partial and seen_complete
    # every window of both releases is carried by the tokens, none was retired
    for token in (A, B):
        labels = {k.decode() for k in redis_client.hkeys(TokenKeys(token).indices)}
        assert labels == {"1m", "5m", "15m", "1h", "4h"}


def test_a_window_added_while_another_is_partial_is_partial_from_the_same_start(
    redis_client,
) -> None:
    """The list holds what it kept when the first longer window came: a window added later
    is partial from that same start, not from the longest window's."""
    rng = random.Random(5)
    t0 = 1_700_000_000_000
    one = Settings(windows=parse_windows("1m,1h"), exact_horizon_ms=EXACT)
    four = Settings(windows=parse_windows("1m,4h"), exact_horizon_ms=EXACT)
    two = Settings(windows=parse_windows("1m,2h"), exact_horizon_ms=EXACT)
    trades: list[Trade] = []
    plan = [(t0 + k * 5 * MIN, one) for k in range(14)]  # 1h kept for 65 minutes
    plan += [(t0 + 70 * MIN, four), (t0 + 100 * MIN, two)]
    for k, (at, s) in enumerate(plan):
        fresh = batch(rng, at, 40 * k, 40)
        trades += fresh
        results = Engine(redis_client, s).apply_records([t.record for t in fresh], now=at)
        assert [r.rebuilt for r in results] == [-1] * len(results)
    start = t0 + 65 * MIN - HOUR  # what the list held when 4h came (as of the step before)
    at = t0 + 100 * MIN
    for token in (A, B):
        view = Reader(redis_client, two).read(token, at)
        assert view.windows["2h"].complete_from == start + 2 * HOUR
        view = Reader(redis_client, four).read(token, at)
        assert view.windows["4h"].complete_from == start + 4 * HOUR
    later = start + 2 * HOUR + MIN
    Engine(redis_client, two).advance([A, B], now=later)
    for token in (A, B):
        view = Reader(redis_client, two).read(token, later)
        assert not view.windows["2h"].partial
        want = reference.windows([t for t in trades if t.token == token], later, two.windows)
        assert window_mismatches(view.windows["2h"], want["2h"]) == []
