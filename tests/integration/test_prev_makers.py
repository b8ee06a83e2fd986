"""prev_makers (CONTRACT §2b, ``lua/lib/pmakers.lua``): bounded, swept, honest across releases.

Its values are compared with the brute-force reference by every previous-window
property test (``test_prev_windows``, ``test_engine_property``, …); these
tests hold what those do not see: the structure a trader leaves in Redis stays
a few points per window however long it trades, traders who stopped trading
leave it, and a token last written by a release without it says "not known"
and then starts over, partial and exact.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support import reference
from tests.support.checks import reference_mismatches
from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"
T0 = 1_700_000_000_000
R = 1_000  # bucket: 1 s


def settings(windows: str = "1s,5s,20s", horizon: int = 3_600_000) -> Settings:
    return Settings(
        windows=parse_windows(windows),
        exact_horizon_ms=horizon,
        bucket_ms=R,
        clock="wall",
        metrics="full",
    )


def trade(n: int, ts: int, trader: str) -> Trade:
    return Trade(
        id=f"m{n}", token=A, side="buy" if n % 3 else "sell", quote_nano=10**9 + n,
        price="1.5", ts=ts, trader=trader,
    )


def steady(client, s: Settings, calls: int, every: int, wallets: int):
    """One trade a call, every ``every`` ms, from ``wallets`` wallets in turn: the applied
    trades (reference.Applied) and the last call's instant."""
    engine, applied = Engine(client, s), reference.Applied(s.exact_longest_ms)
    for k in range(calls):
        now = T0 + k * every
        batch = [trade(k, now - every // 10, f"w{k % wallets}")]
        assert not any(r.failed for r in engine.apply_records([t.record for t in batch], now=now))
        applied.call(batch, now)
    return applied, now


def points_by_slot(client) -> dict[int, int]:
    """The sorted set's points ("<slot>p<trader>:<bucket>") per window slot."""
    out: dict[int, int] = {}
    for m in client.zrange(TokenKeys(A).pmakers, 0, -1):
        digits = len(m) - len(m.lstrip(b"0123456789"))
        if m[digits : digits + 1] == b"p":
            out[int(m[:digits])] = out.get(int(m[:digits]), 0) + 1
    return out


@pytest.mark.parametrize("horizon", [3_600_000, 5_000], ids=["exact", "bucketed"])
def test_a_trader_trading_in_every_bucket_keeps_a_few_points_per_window(redis_client, horizon):
    """One trader in every 1 s bucket for 100 s (5x the longest window): each window keeps
    at most 5 of its points (the thinning; without it the 20 s window would hold ~40),
    and prev_makers equals the reference throughout."""
    s = settings(horizon=horizon)
    engine, reader = Engine(redis_client, s), Reader(redis_client, s)
    applied = reference.Applied(s.exact_longest_ms)
    for k in range(100):
        now = T0 + k * R
        batch = [trade(k, now - 300, "wallet-one"), trade(1000 + k, now - 200, "wallet-two")]
        assert not any(r.failed for r in engine.apply_records([t.record for t in batch], now=now))
        applied.call(batch, now)
        if k % 10 == 9:
            assert reference_mismatches(reader, applied.applied, now, s.windows, [A]) == []
    lists = {
        f: v for f, v in redis_client.hgetall(TokenKeys(A).ptraders).items() if f != b"~"
    }
    assert len(lists) == 2  # the two wallets' digests
    for text in lists.values():
        per_window = text.decode().split(";")
        assert len(per_window) == 3
        assert all(1 <= len(p.split(",")) <= 5 for p in per_window), per_window
    points = points_by_slot(redis_client)
    assert sorted(points) == [0, 1, 2] and max(points.values()) <= 10, points
    view = reader.read(A, T0 + 99 * R)
    assert [w.prev_makers for w in view.windows.values()] == [2, 2, 2]


def test_traders_who_stopped_trading_leave_the_structure(redis_client):
    """200 traders trade once; then the token only slides (a janitor's calls, one per
    bucket): their points pass every window's previous window and are swept (at most 64
    of one window a call), until only the marker is left and prev_makers is 0."""
    s = settings()
    engine = Engine(redis_client, s)
    batch = [trade(n, T0 - 500 + n, f"w{n}") for n in range(200)]
    engine.apply_records([t.record for t in batch], now=T0)
    k = TokenKeys(A)
    assert redis_client.hlen(k.ptraders) == 201
    for step in range(1, 80):
        [r] = engine.advance([A], now=T0 + step * R)
        assert not r.failed
    assert redis_client.hkeys(k.ptraders) == [b"~"]
    assert redis_client.zcard(k.pmakers) == 0
    view = Reader(redis_client, s).read(A, T0 + 79 * R)
    assert [w.prev_makers for w in view.windows.values()] == [0, 0, 0]


def test_a_token_last_written_without_them_is_not_known_then_partial_and_exact(redis_client):
    """A worker that keeps the previous windows' sums but not prev_makers (an earlier
    release, or TRADEAGG_PREV_MAKERS=off: 14 keys) writes the token: a read says
    prev_makers null. The next apply keeping it starts every previous window over
    (prev_complete_from), exact over what it claims."""
    s = settings()
    without = replace(s, prev_makers=False)
    assert s.keeps_prev_makers and without.prev_metrics and not without.keeps_prev_makers
    reader = Reader(redis_client, s)
    applied = reference.Applied(s.exact_longest_ms)

    def step(k: int, cfg: Settings = s) -> int:
        now = T0 + k * 700
        batch = [trade(k, now - 100, f"w{k % 7}")]
        results = Engine(redis_client, cfg).apply_records([t.record for t in batch], now=now)
        assert not any(r.failed for r in results)
        applied.call(batch, now)
        return now

    for k in range(40):
        now = step(k)
    assert reference_mismatches(reader, applied.applied, now, s.windows, [A]) == []
    now = step(40, without)
    view = reader.read(A, now)
    assert [w.prev_makers for w in view.windows.values()] == [None, None, None]
    assert all(w.prev_buys is not None for w in view.windows.values())
    now = step(41)
    for w in reader.read(A, now).windows.values():
        assert w.prev_complete_from is not None and w.prev_complete_from > now
        assert w.prev_makers is not None
    for k in range(42, 120):
        now = step(k)
        assert reference_mismatches(reader, applied.applied, now, s.windows, [A]) == [], k
    assert all(w.prev_complete_from is None for w in reader.read(A, now).windows.values())


def test_a_reader_with_other_windows_reads_the_writers_slots(redis_client):
    """The structure is kept for the windows the token carries; a reader configured with
    fewer (or in another order) finds each of its windows by label."""
    s = settings("1s,5s,20s")
    applied, now = steady(redis_client, s, calls=50, every=500, wallets=5)
    fewer = replace(s, windows=parse_windows("5s,20s"))
    assert reference_mismatches(Reader(redis_client, fewer), applied.applied, now, fewer.windows, [A]) == []
    assert [w.prev_makers for w in Reader(redis_client, fewer).read(A, now).windows.values()] == [5, 5]


def test_turned_off_prev_makers_is_null_and_nothing_is_kept_for_it(redis_client):
    """TRADEAGG_PREV_MAKERS=off: the other previous metrics stay exact, prev_makers is null
    in every read (`show --json` prints null), and its keys are never written."""
    s = replace(settings(), prev_makers=False)
    reader = Reader(redis_client, s)
    applied, now = steady(redis_client, s, calls=30, every=900, wallets=4)
    bad = reference_mismatches(reader, applied.applied, now, s.windows, [A])
    assert bad and all("prev_makers: None != " in b for b in bad), bad
    assert all(w.prev_makers is None and w.prev_buys is not None
               for w in reader.read(A, now).windows.values())
    k = TokenKeys(A)
    assert redis_client.exists(k.pmakers, k.ptraders) == 0
    assert not [f for f in redis_client.hkeys(k.aggregates) if f.endswith(b":prev_makers")]


@pytest.mark.parametrize("other", ["prev_makers_off", "prev_windows_off"])
def test_a_write_without_the_structure_at_the_same_instant_is_seen(redis_client, other):
    """A worker that does not keep the structure writes at the state's own instant (its
    clock behind: at = max(stored at, now) does not move): one with TRADEAGG_PREV_MAKERS
    off inserts a trade (the list grows: the marker's length), one with the previous
    windows off deletes their fields (no stored count). A read then says null or is
    exact, and the next apply keeping it starts over, partial, exact over what it claims
    (before, the structure was trusted: prev_makers 1 instead of 2 / 1 instead of 0)."""
    s = settings("1s,2s,5s")
    without = (
        replace(s, prev_makers=False)
        if other == "prev_makers_off"
        else replace(s, prev_windows=False)
    )
    reader = Reader(redis_client, s)
    applied = reference.Applied(s.exact_longest_ms)

    def call(cfg: Settings, batch: list[Trade], now: int) -> None:
        results = Engine(redis_client, cfg).apply_records([t.record for t in batch], now=now)
        assert not any(r.failed for r in results)
        applied.call(batch, now)

    x = T0 + 10_000
    call(s, [trade(1, x - 1500, "alice")], x)
    call(without, [trade(2, x - 1600, "bob")], x)
    # not known (null), or exact over what it claims (partial when its fields went)
    bad = reference_mismatches(reader, applied.applied, x, s.windows, [A])
    assert all("prev_makers: None != " in b for b in bad), bad
    [r] = Engine(redis_client, s).advance([A], now=x + 1)  # no trades: it starts over
    assert not r.failed
    assert all(w.prev_complete_from for w in reader.read(A, x + 1).windows.values())
    assert reference_mismatches(reader, applied.applied, x + 1, s.windows, [A]) == []
    call(s, [trade(3, x - 1700, "carol")], x + 2)
    assert reference_mismatches(reader, applied.applied, x + 2, s.windows, [A]) == []
    for k in range(3, 40):
        now = x + k * 500
        call(s, [trade(k + 10, now - 100, f"w{k % 3}")], now)
        assert reference_mismatches(reader, applied.applied, now, s.windows, [A]) == [], k


def test_many_new_traders_a_call_do_not_pile_up(redis_client):
    """200 new traders every 1 s bucket (windows up to 5 s): the sweep takes as many stale
    ones as a call brings new, so the structure holds about the traders of twice the
    longest window, not every trader ever seen (before: 17,097 after 120 s, growing)."""
    s = settings("1s,2s,5s")
    engine = Engine(redis_client, s)
    k, n = TokenKeys(A), 0
    sizes = []
    for step in range(121):
        now = T0 + step * R
        batch = []
        for j in range(200):
            n += 1
            batch.append(trade(n, now - 500 + j, f"w{n}"))
        assert not any(r.failed for r in engine.apply_records([t.record for t in batch], now=now))
        sizes.append(redis_client.hlen(k.ptraders))
    # twice the longest window (10 s) of traders, plus a bucket or two, plus the marker
    assert max(sizes[60:]) <= 200 * 13, sizes[60:]


def test_a_window_added_or_retired_leaves_the_others_complete(redis_client):
    """The structure's slots are kept per window label: a release adding 2s starts only
    2s's previous metrics over (partial); 1s and 5s stay complete and exact. Retired,
    2s's members are deleted over the next calls (an orphan slot), the others intact."""
    from tradeagg.engine.windowset import Retirer

    two = settings("1s,5s")
    three = settings("1s,2s,5s")
    applied = reference.Applied(three.exact_longest_ms)

    def call(cfg: Settings, k: int) -> int:
        now = T0 + k * 500
        batch = [trade(k, now - 50, f"w{k % 6}")]
        assert not any(r.failed for r in Engine(redis_client, cfg).apply_records(
            [t.record for t in batch], now=now))
        applied.call(batch, now)
        return now

    for k in range(40):
        now = call(two, k)
    assert all(w.prev_complete_from is None for w in Reader(redis_client, two).read(A, now).windows.values())
    now = call(three, 40)
    view = Reader(redis_client, three).read(A, now).windows
    assert view["2s"].prev_complete_from is not None
    assert view["1s"].prev_complete_from is None and view["5s"].prev_complete_from is None
    for k in range(41, 50):
        now = call(three, k)
        assert reference_mismatches(Reader(redis_client, three), applied.applied, now, three.windows, [A]) == []
    slots_before = points_by_slot(redis_client)
    assert len(slots_before) == 3, slots_before
    Retirer(redis_client).retire(["2s"])
    for k in range(50, 60):
        now = call(two, k)
        assert reference_mismatches(Reader(redis_client, two), applied.applied, now, two.windows, [A]) == []
    view = Reader(redis_client, two).read(A, now).windows
    assert all(w.prev_complete_from is None for w in view.values())
    slots_after = points_by_slot(redis_client)
    assert len(slots_after) == 2 and set(slots_after) < set(slots_before), (slots_before, slots_after)
    assert redis_client.hget(TokenKeys(A).ptraders, "~").split()[5] == b"-"  # no orphan left


def test_a_slot_number_is_never_given_again(redis_client):
    """5s (bucketed) leaves the windows of a worker's calls, its slot is orphaned and
    deleted, then comes back: it gets a new slot number, never the old one, whose list a
    trader who did not trade meanwhile still holds in its text (given again, that stale
    point made a pair without its point: prev_makers 0 instead of 1 at 19 s)."""
    full = settings("1s,2s,5s", horizon=2_000)
    short = settings("1s,2s", horizon=2_000)
    applied = reference.Applied(full.exact_longest_ms)

    def call(cfg: Settings, now: int, batch: list[Trade]) -> None:
        results = Engine(redis_client, cfg).apply_records([t.record for t in batch], now=now)
        assert not any(r.failed for r in results)
        applied.call(batch, now)

    call(full, T0 + 10_000, [trade(1, T0 + 9_500, "x")])
    for k, at in enumerate((11_000, 12_000, 13_000)):
        call(short, T0 + at, [trade(10 + k, T0 + at - 10, "y")])
    call(full, T0 + 14_000, [trade(2, T0 + 13_500, "x")])
    marker = redis_client.hget(TokenKeys(A).ptraders, "~").split()
    assert marker[3] == b"4" and b"5s:3" in marker[4], marker  # next slot 4; 5s got 3, not 2
    reader = Reader(redis_client, full)
    for at in (T0 + 14_000, T0 + 19_000, T0 + 20_000):
        # (5s itself is partial after its absence: its other metrics are not this test's)
        bad = reference_mismatches(reader, applied.applied, at, full.windows, [A])
        assert [b for b in bad if "prev_" in b] == [], at
