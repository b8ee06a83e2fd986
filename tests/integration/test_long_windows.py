"""Property: bucketed (long) windows equal the brute-force reference (CONTRACT §2c).

Windows 1s, 2s, 5s are exact (TRADEAGG_EXACT_HORIZON 5s); 10s and 20s are
bucketed with a 1 s resolution: at ``at`` they hold the applied trades with
``ceil((at - w) / r) * r < ts <= at``. Trades arrive in any order, with
duplicates, replays of whole batches and trades late for the exact horizon
(dropped for every window: the model below says which were applied), and
every metric of every window, long ones included, is read at several
instants (each a read ahead of the token's last update, without writing) and
compared with the reference over the applied trades.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.support import reference
from tests.support.checks import reference_mismatches, window_mismatches
from tests.support.cli import cli
from tests.support.observe_procs import env_for
from tests.support.strategies import TOKENS, TRADERS, arrival_batches, random_batch, trades
from tradeagg.clock import now_ms
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import SCREENER_METRICS, Reader
from tradeagg.settings import Settings, parse_windows

SPEC = "1s,2s,5s,10s,20s"


def long_settings(metrics: str = "full", spec: str = SPEC) -> Settings:
    return Settings(
        windows=parse_windows(spec),
        exact_horizon_ms=5_000,
        bucket_ms=1_000,
        clock="wall",
        metrics=metrics,
        tokens_per_call=2,
    )


def mismatches(reader: Reader, applied: list[Trade], at: int) -> list[str]:
    """Reference mismatches of every window; without the screener's metrics
    (TRADEAGG_METRICS=seed) those five are not compared (the read omits them)."""
    bad = reference_mismatches(reader, applied, at, reader.settings.windows, TOKENS)
    if reader.settings.metrics == "seed":
        bad = [b for b in bad if b.split(": ")[1] not in SCREENER_METRICS]
    return bad


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), ts=trades(span_ms=40_000), metrics=st.sampled_from(["full", "seed"]))
def test_long_windows_match_reference(redis_client, data, ts, metrics):
    redis_client.flushall()
    s = long_settings(metrics)
    engine = Engine(redis_client, s)
    reader = Reader(redis_client, s, engine.scripts)
    model = reference.Applied(s.exact_longest_ms)
    batches = arrival_batches(data, ts)
    now = min(t.ts for t in ts) + data.draw(st.integers(-2_000, 20_000))
    for batch in batches:
        for _ in range(data.draw(st.integers(1, 2))):
            results = engine.apply_records([t.record for t in batch], now=now)
            assert not any(r.failed for r in results), results
            model.call(batch, now)
        if data.draw(st.booleans()):
            at = now + data.draw(st.integers(0, 3_000))
            bad = mismatches(reader, model.applied, at)
            assert bad == [], "\n".join(bad[:10])
        now += data.draw(st.integers(0, 8_000))
    for _ in range(3):
        now += data.draw(st.integers(0, 12_000))
        bad = mismatches(reader, model.applied, now)
        assert bad == [], "\n".join(bad[:10])


@pytest.mark.parametrize(
    ("before", "mixed"), [("1s,2s,5s", False), ("1s,2s,5s,10s,20s", False), ("1s,2s,5s", True)]
)
def test_a_window_newly_carried_is_partial_and_honest_until_complete(redis_client, before, mixed):
    """A token written without long windows (an earlier release: without those windows,
    or with them exact), then with them (``mixed``: the two releases alternate for a
    while, the earlier one moving the token without feeding the buckets): each long
    window reports complete_from and, until then, counts exactly the trades after
    complete_from - w (never silently fewer); from then on it equals the reference."""
    rng = random.Random(7)
    old = replace(long_settings(spec=before), exact_horizon_ms=20_000)
    new = long_settings()
    t0 = 1_700_000_000_000
    applied = reference.Applied(new.exact_longest_ms)
    seen = {"partial": 0, "complete": 0}
    for k in range(75):
        now = t0 + k * 700
        s = old if k < 15 or (mixed and k < 30 and k % 3 == 0) else new
        batch = random_batch(rng, f"t{k}", now, 4_000)
        Engine(redis_client, s).apply_records([t.record for t in batch], now=now)
        applied.call(batch, now)
        reader = Reader(redis_client, new)
        for at in (now, now + rng.randrange(0, 3_000)):
            for token in TOKENS:
                view = reader.read(token, at)
                mine = [t for t in applied.applied if t.token == token]
                for w in new.long_windows:
                    got = view.windows[w.label]
                    since = new.window_start(at, w.ms)
                    assert got.kind == "bucketed" and got.start == since
                    if got.complete_from is not None:
                        assert got.complete_from > at
                        since = max(since, got.complete_from - w.ms)
                    seen["partial" if got.partial else "complete"] += 1
                    want = reference.window(reference.distinct(mine), at, w, since)
                    assert window_mismatches(got, want) == [], (k, at, w.label)
    assert seen["partial"] > 0 and seen["complete"] > 0, seen


def test_show_json_through_the_cli_with_6h_and_24h(redis_server, redis_client):
    """26 hours of trades applied as a worker would (each call's trades within the
    exact hour before it); ``tradeagg show --json`` then gives every window, 6h and
    24h bucketed at 1m, equal to the reference, with its kind and start, at the last
    update and two hours later (a read ahead that slides buckets out without writing)."""
    spec = "1m,5m,15m,30m,1h,6h,24h"
    s = Settings(windows=parse_windows(spec), clock="wall")
    assert [w.label for w in s.long_windows] == ["6h", "24h"]
    rng = random.Random(3)
    minute, hour = 60_000, 3_600_000
    end = (now_ms() - 3 * hour) // 1000 * 1000 + 17
    engine = Engine(redis_client, s)
    trades: list[Trade] = []
    for k in range(26 * 3 + 1):
        at = end - 26 * hour + k * 20 * minute
        batch = [
            Trade(
                id=f"c{k}-{i}",
                token=TOKENS[0],
                side=rng.choice(("buy", "sell")),
                quote_nano=rng.randrange(1, 10**13),
                price=str(rng.randrange(1, 10**7) / 10_000),
                ts=at - rng.randrange(0, 50 * minute),
                seq=rng.randrange(2),
                trader=rng.choice(TRADERS),
            )
            for i in range(12)
        ]
        results = engine.apply_records([t.record for t in batch], now=at)
        assert [r.late for r in results] == [0]
        trades += batch
    env = env_for(redis_server.url, TRADEAGG_WINDOWS=spec)
    for at in (end, end + 2 * hour):
        done = cli(env, "show", TOKENS[0], "--at", str(at), "--json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout, parse_float=Decimal)
        want = reference.windows(trades, at, s.windows, s.exact_horizon_ms, s.bucket_ms)
        assert list(doc["windows"]) == spec.split(",")
        for w in s.windows:
            got = doc["windows"][w.label]
            bucketed = w.ms > hour
            assert got["kind"] == ("bucketed" if bucketed else "exact")
            assert got["from"] == (-((w.ms - at) // minute) * minute if bucketed else at - w.ms)
            assert got["partial"] is False
            assert window_mismatches(got, want[w.label]) == [], (at, w.label)
        n = {label: want[label]["buys"] + want[label]["sells"] for label in ("1h", "6h", "24h")}
        assert n["24h"] > n["6h"] > n["1h"] >= 0 and n["6h"] > 0, n


def test_a_read_far_ahead_catches_the_long_windows_up_too(redis_client):
    """A read so far ahead that a walk would pass SLIDE_MAX elements answers "behind";
    the reader advances the token with the windows it carries, long ones included, and
    reads again: equal to the reference (nothing skipped, no bucket left unsubtracted)."""
    s = long_settings()
    t0 = 1_700_000_000_000
    trades = [
        Trade(id=f"f{i}", token=TOKENS[0], side=("buy", "sell")[i % 2], quote_nano=i + 1,
              price=str(1 + i % 97), ts=t0 + i, seq=0, trader=TRADERS[1 + i % 5])
        for i in range(4_500)
    ]
    engine = Engine(redis_client, s)
    for i in range(0, len(trades), 1_500):
        engine.apply_records([t.record for t in trades[i : i + 1_500]], now=t0 + i + 1_499)
    reader = Reader(redis_client, s, engine.scripts)
    for at in (t0 + 4_499 + 4_000, t0 + 4_499 + 12_000, t0 + 40_000):
        assert mismatches(reader, trades, at) == []
