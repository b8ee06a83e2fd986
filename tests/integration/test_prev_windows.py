"""Property: the previous-window metrics (CONTRACT §2b) equal the brute-force reference.

For every window, exact and bucketed, ``prev_buys``, ``prev_sells``,
``prev_volume`` and ``volume_change_pct`` count the applied trades with
``ceil((at - 2w) / r) * r < ts <= ceil((at - w) / r) * r``. Trades arrive in
any order, with duplicates, replays of whole batches and late trades; after
every call the stored fields (as of last_update) and reads at several later
instants (without writing) are compared with the reference over the applied
trades. A token born with these metrics is never partial.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.support import reference
from tests.support.checks import reference_mismatches, stored_metrics, window_mismatches
from tests.support.strategies import TOKENS, arrival_batches, random_batch, trades
from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import PREV_METRICS, Reader
from tradeagg.settings import Settings, parse_windows

# exact and bucketed (horizon 5 s), and exact only (the default 1 h horizon); r = 1 s
CONFIGS = {
    "long": ("1s,2s,5s,10s,20s", 5_000),
    "exact": ("1s,2s,4s", 3_600_000),
}


def prev_settings(config: str) -> Settings:
    spec, horizon = CONFIGS[config]
    return Settings(
        windows=parse_windows(spec),
        exact_horizon_ms=horizon,
        bucket_ms=1_000,
        clock="wall",
        metrics="full",
        tokens_per_call=2,
    )


def stored_mismatches(client, s: Settings, applied: list[Trade]) -> list[str]:
    """The aggregates hash itself (L:prev_buys, …) against the reference at last_update."""
    bad = []
    for token in TOKENS:
        k = TokenKeys(token)
        lu = client.get(k.last_update)
        if lu is None:
            continue
        agg = client.hgetall(k.aggregates)
        mine = [t for t in applied if t.token == token]
        want = reference.windows(mine, int(lu), s.windows, s.exact_horizon_ms, s.bucket_ms)
        for w in s.windows:
            got = stored_metrics(agg, w.label)
            bad += [
                f"{token} {w.label} stored: {d}"
                for d in window_mismatches(got, want[w.label])
                if d.split(":")[0] in PREV_METRICS
            ]
    return bad


def views_complete(reader: Reader, at: int) -> None:
    for token in TOKENS:
        for label, w in reader.read(token, at).windows.items():
            assert w.prev_complete_from is None, (token, label)


@hsettings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    ts=trades(span_ms=40_000),
    config=st.sampled_from(sorted(CONFIGS)),
)
def test_previous_windows_match_reference(redis_client, data, ts, config):
    redis_client.flushall()
    s = prev_settings(config)
    engine = Engine(redis_client, s)
    reader = Reader(redis_client, s, engine.scripts)
    model = reference.Applied(s.exact_longest_ms)
    batches = arrival_batches(data, ts)
    now = min(t.ts for t in ts) + data.draw(st.integers(-2_000, 20_000))
    for batch in batches:
        for _ in range(data.draw(st.integers(1, 2))):  # a replay of the whole batch
            results = engine.apply_records([t.record for t in batch], now=now)
            assert not any(r.failed for r in results), results
            model.call(batch, now)
        bad = stored_mismatches(redis_client, s, model.applied)
        assert bad == [], "\n".join(bad[:10])
        for _ in range(data.draw(st.integers(0, 2))):
            at = now + data.draw(st.integers(0, 9_000))
            bad = reference_mismatches(reader, model.applied, at, s.windows, TOKENS)
            assert bad == [], "\n".join(bad[:10])
        now += data.draw(st.integers(0, 8_000))
    for _ in range(3):
        now += data.draw(st.integers(0, 12_000))
        bad = reference_mismatches(reader, model.applied, now, s.windows, TOKENS)
        assert bad == [], "\n".join(bad[:10])
        views_complete(reader, now)


def test_a_token_written_without_them_or_rebuilt_is_partial_and_honest(redis_client):
    """A token written by a release without the previous windows (here: a bucket that
    divides no window), then with them, then by both, and later rebuilt (its indices lost): each
    window's previous metrics say prev_complete_from and, until then, count exactly
    the trades after prev_complete_from - 2w; complete, they equal the reference."""
    rng = random.Random(11)
    old = replace(prev_settings("exact"), bucket_ms=3_000)
    new = prev_settings("exact")
    assert not old.prev_metrics and new.prev_metrics
    t0 = 1_700_000_000_000
    applied = reference.Applied(new.exact_longest_ms)
    seen = {"partial": 0, "complete": 0}
    for k in range(70):
        now = t0 + k * 400
        if k == 45:  # damage: the next apply rebuilds the token from its list
            redis_client.delete(TokenKeys(TOKENS[0]).indices)
        batch = random_batch(rng, f"p{k}", now, 3_000)
        # the earlier release writes first, then the new one, then both (a rolling deploy)
        results = Engine(redis_client, old if k < 15 or 25 <= k < 28 else new).apply_records(
            [t.record for t in batch], now=now
        )
        assert not any(r.failed for r in results), results
        assert (k == 45) == any(r.rebuilt >= 0 for r in results), (k, results)
        applied.call(batch, now)
        reader = Reader(redis_client, new)
        for at in (now, now + rng.randrange(0, 3_000)):
            bad = reference_mismatches(reader, applied.applied, at, new.windows, TOKENS)
            assert bad == [], (k, bad[:5])
            for token in TOKENS:
                for w in reader.read(token, at).windows.values():
                    cf = w.prev_complete_from
                    assert cf is None or cf > at
                    seen["partial" if cf else "complete"] += 1
                    if k == 45 and token == TOKENS[0] and at == now:  # rebuilt: start over
                        assert cf is not None, redis_client.hgetall(TokenKeys(token).aggregates)
    assert seen["partial"] > 0 and seen["complete"] > 0, seen


def test_turned_off_they_are_kept_by_no_call_and_deleted(redis_client):
    """TRADEAGG_PREV_WINDOWS=off: an apply keeps no previous window and deletes those an
    earlier setting stored (exact and bucketed windows alike); the other metrics stay
    exact; `show --json` then gives none; on again, they come back partial, honest."""
    on = prev_settings("long")
    off = replace(on, prev_windows=False)
    assert on.prev_metrics and not off.prev_metrics and off.prev_dropped
    rng = random.Random(5)
    t0 = 1_700_000_000_000
    applied = reference.Applied(on.exact_longest_ms)

    def step(s: Settings, k: int) -> int:
        now = t0 + k * 700
        batch = random_batch(rng, f"o{k}", now, 2_000)
        results = Engine(redis_client, s).apply_records([t.record for t in batch], now=now)
        assert not any(r.failed for r in results), results
        applied.call(batch, now)
        return now

    def prev_fields(token: str) -> list[bytes]:
        fields = redis_client.hkeys(TokenKeys(token).aggregates)
        return [f for f in fields if b":prev_" in f or b":volume_change_pct" in f]

    for k in range(10):
        now = step(on, k)
    assert all(prev_fields(t) for t in TOKENS)
    now = step(off, 10)
    assert [prev_fields(t) for t in TOKENS] == [[], []]
    for k in range(11, 20):
        now = step(off, k)
        assert [prev_fields(t) for t in TOKENS] == [[], []]
        bad = reference_mismatches(Reader(redis_client, off), applied.applied, now, off.windows, TOKENS)
        assert bad == [], bad[:5]
    view = Reader(redis_client, off).read(TOKENS[0], now)
    assert all(w.prev_buys is None for w in view.windows.values())
    # on again: counted from then on, partial until complete, exact over what they claim
    now = step(on, 20)
    for w in Reader(redis_client, on).read(TOKENS[0], now).windows.values():
        assert w.prev_complete_from is not None and w.prev_complete_from > now
    bad = reference_mismatches(Reader(redis_client, on), applied.applied, now, on.windows, TOKENS)
    assert bad == [], bad[:5]
