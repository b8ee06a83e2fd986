"""Screener metrics (CONTRACT §2b, issue 13): makers, buyers, sellers, high and low,
exact as a function of the trade set and the instant, stored and read alike."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.support import reference
from tests.support.checks import assert_matches_reference, stored_metrics, window_mismatches
from tests.support.strategies import TOKENS, trades
from tradeagg.contract.entry import encode_records
from tradeagg.contract.keys import TokenKeys, full_apply_keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import ApplyStatus, Engine, RawResult, token_result, windows_arg
from tradeagg.engine.rank import Ranker
from tradeagg.engine.read import Reader
from tradeagg.errors import BadQuery
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"
T0 = 1_700_000_000_000
WALLETS = [c * 40 for c in "ABCDEFGH"]


def trade(i: int, ts: int, trader: str = "", side: str = "", price: str = "") -> Trade:
    return Trade(
        id=f"s{i}",
        token=A,
        side=side or ("buy" if i % 3 else "sell"),
        quote_nano=1_000_000 + i,
        price=price or f"{1 + (i * 37 % 23) / 8:g}",
        ts=ts,
        trader=trader or WALLETS[i * 5 % len(WALLETS)],
    )


def stored_match_reference(client: redis.Redis, s: Settings, kept: list[Trade], at: int) -> None:
    """The aggregates hash itself (what other programs read) equals the reference at ``at``."""
    agg = client.hgetall(TokenKeys(A).aggregates)
    want = reference.windows(kept, at, s.windows)
    for w in s.windows:
        assert window_mismatches(stored_metrics(agg, w.label), want[w.label]) == [], w.label


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), ts=trades(tokens=[A], max_size=80))
def test_stored_and_read_metrics_equal_the_reference_after_every_call(redis_client, data, ts):
    """Late, future-stamped, duplicate and replayed trades, calls at rising instants:
    after each call the stored fields and a read equal the reference."""
    redis_client.flushall()
    s = Settings(windows=parse_windows("1s,5s,15s"), clock="wall")
    engine, reader = Engine(redis_client, s), Reader(redis_client, s)
    now = min(t.ts for t in ts) + data.draw(st.integers(-3_000, 10_000))
    sent: list[Trade] = []
    while ts:
        k = data.draw(st.integers(1, 12))
        batch, ts = ts[:k], ts[k:]
        if sent and data.draw(st.booleans()):
            batch = batch + data.draw(st.lists(st.sampled_from(sent), max_size=3))  # replays
        [r] = engine.apply_records([t.record for t in batch], now=now)
        assert not r.failed, r
        sent.extend(t for t in batch if t not in sent)
        at = reader.read(A).last_update
        stored_match_reference(redis_client, s, sent, at)
        assert_matches_reference(
            reader, sent, at + data.draw(st.integers(0, 20_000)), s.windows, [A]
        )
        now += data.draw(st.integers(0, 6_000))


def test_future_trades_count_only_once_the_windows_reach_them(redis_client) -> None:
    s = Settings(windows=parse_windows("10s,1m"), clock="wall")
    engine, reader = Engine(redis_client, s), Reader(redis_client, s)
    past = trade(1, T0 - 5_000, WALLETS[0], "buy", "2")
    future = trade(2, T0 + 3_000, WALLETS[1], "sell", "9")
    again = trade(3, T0 + 3_000, WALLETS[0], "sell", "1")  # the same trader, later
    engine.apply_records([t.record for t in (past, future, again)], now=T0)
    w = reader.read(A, T0).windows["10s"]
    assert (w.makers, w.buyers, w.sellers, w.high, w.low) == (1, 1, 0, Decimal(2), Decimal(2))
    for at in (T0 + 2_999, T0 + 3_000, T0 + 6_000, T0 + 9_000):
        assert_matches_reference(reader, [past, future, again], at, s.windows, [A])
    engine.advance([A], now=T0 + 6_000)  # the slide takes them in, stored
    stored_match_reference(redis_client, s, [past, future, again], T0 + 6_000)
    engine.advance([A], now=T0 + 12_000)  # the first trade leaves 10s, not 1m
    stored_match_reference(redis_client, s, [past, future, again], T0 + 12_000)
    w = reader.read(A, T0 + 12_000).windows
    assert (w["10s"].makers, w["10s"].buyers, w["1m"].buyers) == (2, 0, 1)


def test_a_long_rebuild_counts_the_screener_sets_in_bounded_steps(redis_client) -> None:
    """A list of 3,500 trades rebuilt after its indices are lost: REBUILDING steps, each
    reading at most 1,000 elements, then the same metrics as before."""
    s = Settings(windows=parse_windows("1m,5m,1h"), clock="wall")
    engine, reader = Engine(redis_client, s), Reader(redis_client, s)
    rng = random.Random(5)
    kept = [
        trade(i, T0 - 3_000_000 + i * 850, rng.choice(WALLETS), price=f"{rng.randint(1, 999)}.5")
        for i in range(3_500)
    ]
    for i in range(0, len(kept), 500):
        engine.apply_records([t.record for t in kept[i : i + 500]], now=T0)
    before = reader.read(A, T0)
    stored_match_reference(redis_client, s, kept, T0)
    k = TokenKeys(A)
    redis_client.delete(k.indices, k.high)  # damage: rebuilt from the list
    results = []
    while True:
        raw = engine.scripts.apply_trades(
            keys=full_apply_keys(A), args=[T0, "at", windows_arg(s), s.max_token_trades, ""]
        )
        r = token_result(A, RawResult(*raw))
        results.append(r)
        assert r.touched <= 1_001, r
        if r.status is not ApplyStatus.REBUILDING:
            break
    assert len(results) == 4 and results[-1].status is ApplyStatus.REBUILT
    assert reader.read(A, T0) == before
    stored_match_reference(redis_client, s, kept, T0)


def test_trades_of_no_trader_count_in_high_and_low_only(redis_client) -> None:
    """Records of format 1 (earlier bridges) carry no trader."""
    s = Settings(windows=parse_windows("1m"), clock="wall")
    engine, reader = Engine(redis_client, s), Reader(redis_client, s)
    old = Trade("o1", A, "buy", 5, "7", T0 - 1_000)  # no trader
    new = trade(2, T0 - 500, WALLETS[3], "buy", "3")
    engine.apply_records([old.record, new.record], now=T0)
    assert redis_client.lindex(TokenKeys(A).trades, 0).decode().split(" ")[2] == "B"  # no digest
    w = reader.read(A, T0).windows["1m"]
    assert (w.makers, w.buyers, w.high, w.low) == (1, 1, Decimal(7), Decimal(3))
    assert encode_records([old.record])["v"] == "3"


def test_seed_metrics_keep_no_screener_state_and_omit_its_fields(redis_client) -> None:
    full = Settings(windows=parse_windows("1m,5m"), clock="wall")
    seed = replace(full, metrics="seed")
    batch = [trade(i, T0 - 1_000 * i) for i in range(20)]
    Engine(redis_client, seed).apply_records([t.record for t in batch], now=T0)
    k = TokenKeys(A)
    assert not any(redis_client.exists(key) for key in k.screener())
    assert not [f for f in redis_client.hkeys(k.aggregates) if b"makers" in f or b"high" in f]
    view = Reader(redis_client, seed).read(A, T0)
    assert all(not w.screened for w in view.windows.values())
    try:
        Ranker(redis_client, seed).top("1m", "makers")
        raise AssertionError("ranking by makers without the screener's sets")
    except BadQuery:
        pass
    # a full worker meets the token: rebuilt once with its sets, then exact
    [r] = Engine(redis_client, full).advance([A], now=T0)
    assert r.rebuilt >= 0 and not r.failed
    assert_matches_reference(Reader(redis_client, full), batch, T0, full.windows, [A])
    stored_match_reference(redis_client, full, batch, T0)


def test_a_full_reader_counts_a_token_written_without_sets_from_its_list(redis_client) -> None:
    """Written by a seed worker (no sets, no "S" in the id index), read by a full
    reader before any full worker met it: makers and the rest from the list, not 0."""
    full = Settings(windows=parse_windows("1m,5m"), clock="wall")
    seed = replace(full, metrics="seed")
    batch = [trade(i, T0 - 1_000 * i) for i in range(20)]
    Engine(redis_client, seed).apply_records([t.record for t in batch], now=T0)
    for at in (T0, T0 + 30_000):
        assert_matches_reference(Reader(redis_client, full), batch, at, full.windows, [A])
    assert not any(redis_client.exists(key) for key in TokenKeys(A).screener())  # read-only


def test_a_read_as_of_last_update_answers_the_stored_screener_metrics(redis_client) -> None:
    """What the hub reads for every announcement: a state as of its own last_update. The
    apply stored that state's makers.. low, so the read answers them without counting
    the sets again (no ZCOUNT, no deque read); ahead of last_update it counts. Both
    equal the reference."""
    s = Settings(windows=parse_windows("10s,1m,5m"), clock="wall")
    engine, reader = Engine(redis_client, s), Reader(redis_client, s)
    batch = [trade(i, T0 - 700 * i) for i in range(60)]
    engine.apply_records([t.record for t in batch], now=T0)

    def set_reads() -> int:
        stats = redis_client.info("commandstats")
        return sum(
            stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("zcount", "zrangebyscore")
        )

    before = set_reads()
    assert_matches_reference(reader, batch, T0, s.windows, [A])
    assert set_reads() == before
    assert_matches_reference(reader, batch, T0 + 20_000, s.windows, [A])
    assert set_reads() > before


def test_a_token_a_seed_worker_emptied_answers_no_stale_screener_metrics(redis_client) -> None:
    """A rolling deploy: a full worker stored makers.. low, then a seed worker (which
    writes none of them) slid every trade out of every window, emptying the list. A
    full read as of that last_update counts 0 and null, not the stale stored fields."""
    full = Settings(windows=parse_windows("1m,5m"), clock="wall")
    seed = replace(full, metrics="seed")
    batch = [trade(i, T0 - 1_000 * i) for i in range(20)]
    Engine(redis_client, full).apply_records([t.record for t in batch], now=T0)
    Engine(redis_client, seed).advance([A], now=T0 + 400_000)
    k = TokenKeys(A)
    assert redis_client.llen(k.trades) == 0 and redis_client.hget(k.aggregates, "5m:makers")
    lu = int(redis_client.get(k.last_update))
    assert_matches_reference(Reader(redis_client, full), batch, lu, full.windows, [A])


def test_damaged_stored_screener_fields_are_counted_again_as_of_last_update(
    redis_client,
) -> None:
    """Stored fields that fail the load checks' kind of check (a count above the
    window's trades, an unparsable or missing price) are not answered: the read
    counts from the sets, as it does ahead of last_update."""
    s = Settings(windows=parse_windows("1m,5m"), clock="wall")
    batch = [trade(i, T0 - 1_000 * i) for i in range(20)]
    damage = [("1m:makers", "99"), ("1m:buyers", "1.5"), ("1m:high", "abc"), ("5m:low", "1e3")]
    for field, value in [*damage, ("1m:high", None)]:
        redis_client.flushall()
        Engine(redis_client, s).apply_records([t.record for t in batch], now=T0)
        k = TokenKeys(A).aggregates
        if value is None:
            redis_client.hdel(k, field)
        else:
            redis_client.hset(k, field, value)
        assert_matches_reference(Reader(redis_client, s), batch, T0, s.windows, [A])


def test_top_ranks_by_makers(redis_client) -> None:
    s = Settings(windows=parse_windows("1m"), clock="wall")
    engine = Engine(redis_client, s)
    a = [trade(i, T0 - 100 * i, WALLETS[i % 2]) for i in range(6)]  # 2 makers, 6 trades
    b = [replace(trade(10 + i, T0 - 100 * i, WALLETS[i]), token=TOKENS[1]) for i in range(3)]
    engine.apply_records([t.record for t in a + b], now=T0)
    ranking = Ranker(redis_client, s).top("1m", "makers", at=T0)
    assert [r.token for r in ranking.rows] == [TOKENS[1], A]
    assert [r.window("1m").makers for r in ranking.rows] == [3, 2]


def test_high_and_low_exact_on_both_sides_of_the_in_memory_deque_limit(redis_client) -> None:
    """A deque with at most SCR.PEEK (32) elements after the longest window's start is
    updated in memory (lib/screener.lua SCR.deque); a longer one takes the stored path
    (deque_add, extremes). Falling then rising prices grow the high (low) deque past
    the limit and shrink it again, with late trades and slides: stored fields equal the
    reference after every call."""
    s = Settings(windows=parse_windows("10s,1m,5m"), clock="wall")
    engine, reader = Engine(redis_client, s), Reader(redis_client, s)
    rng = random.Random(13)
    prices = [f"{200 - i}.25" for i in range(45)] + [f"{155 + i}.5" for i in range(45)]
    sent: list[Trade] = []
    now, longest = T0, [0, 0]
    for i, p in enumerate(prices):
        ts = now - (rng.randint(1, 4_000) if i % 7 == 3 else 0)  # now and then a late one
        batch = [trade(i, ts, rng.choice(WALLETS), price=p)]
        [r] = engine.apply_records([t.record for t in batch], now=now)
        assert not r.failed, r
        sent.extend(batch)
        stored_match_reference(redis_client, s, sent, now)
        high = redis_client.zcard(TokenKeys(A).high)
        low = redis_client.zcard(TokenKeys(A).low)
        longest = [max(longest[0], high), max(longest[1], low)]
        now += rng.choice([1_000, 2_500, 7_000])
    # the falling run made a high deque longer than 32, the rising run a long low deque
    assert min(longest) > 32, longest
    for at in (now, now + 30_000, now + 290_000):
        assert_matches_reference(reader, sent, at, s.windows, [A])
