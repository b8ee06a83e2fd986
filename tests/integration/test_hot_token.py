"""Hot tokens (issue 11): a call into a 300,000-trade token touches O(log n)
list elements, counted by the script itself, and stays exact.

The big token is built once through the engine (in-order batches), dumped, and
restored before each case, so every case starts from the same state.
"""

from __future__ import annotations

import math

import pytest
import redis

from tests.support import reference
from tests.support.checks import assert_matches_reference, stored_metrics, window_mismatches
from tests.support.idindex import id_index, id_key
from tradeagg.contract.keys import (
    TokenKeys,
    long_apply_keys,
    token_keys,
)
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import (
    MAX_ENTRIES_PER_CALL,
    ApplyStatus,
    Engine,
    RawResult,
    TokenResult,
    token_result,
    windows_arg,
)
from tradeagg.engine.integrity import DEEP_STEP, Integrity
from tradeagg.engine.read import Reader
from tradeagg.errors import FarAhead, TokenRebuilding
from tradeagg.settings import Settings, parse_windows

N = 300_000
STEP = 10  # ms between trades: 300,000 trades cover 50 minutes
BASE = 1_700_000_000_000
AT = BASE + (N - 1) * STEP  # the state's last_update: the newest trade
TOKEN = "So11111111111111111111111111111111111111112"
S = Settings(windows=parse_windows("1m,10m,1h"), clock="wall", max_token_trades=1_000_000)
LOG = math.ceil(math.log2(N))
TAIL_MERGE = 64  # lua/lib/insert.lua
SLIDE_MAX = 2048  # lua/lib/slide.lua: most list elements one walk takes
CHUNK = 1024  # lua/lib/slide.lua: a walk's largest LRANGE, read past where it stops
REBUILD_STEP = 1000  # lua/lib/rebuild.lua: list elements one rebuild call reads


TRADERS = [f"{k:0>44}".replace("0", "1") for k in range(5_000)]  # 5,000 wallets


def trade(i: int, ts: int, ident: str | None = None) -> Trade:
    return Trade(
        id=ident or f"h{i}",
        token=TOKEN,
        side="buy" if i % 3 else "sell",
        quote_nano=1_000_000_000 + (i * 7919 % 1000) * 1_000_003,
        price=f"{1 + (i % 97) / 100:.2f}",
        ts=ts,
        trader=TRADERS[i * 7 % len(TRADERS)],
    )


HISTORY = [trade(i, BASE + i * STEP) for i in range(N)]


@pytest.fixture(scope="module")
def big_token(redis_server) -> dict[str, bytes]:
    """DUMPs of the big token's keys, built through the engine in in-order batches."""
    client = redis_server.client()
    client.flushall()
    engine = Engine(client, S)
    for i in range(0, N, MAX_ENTRIES_PER_CALL):
        batch = HISTORY[i : i + MAX_ENTRIES_PER_CALL]
        [r] = engine.apply_call([(TOKEN, [t.entry for t in batch])], now=batch[-1].ts)
        assert (r.status, r.applied) == (ApplyStatus.OK, len(batch))
    k = TokenKeys(TOKEN)
    assert client.llen(k.trades) == N
    # with the buckets, which the previous windows' metrics are sums of
    # (and prev_makers' keys, whose marker names this state: restored, it is trusted)
    keys = [*k.all(), k.ids, *k.screener(), k.buckets, *k.prev_makers()]
    dumps = {key: client.dump(key) for key in keys}
    client.close()
    return dumps


@pytest.fixture
def hot(redis_client: redis.Redis, big_token: dict[str, bytes]) -> Engine:
    for key, value in big_token.items():
        redis_client.restore(key, 0, value, replace=True)
    return Engine(redis_client, S)


def apply(engine: Engine, trades: list[Trade], now: int) -> TokenResult:
    [r] = engine.apply_call([(TOKEN, sorted(t.entry for t in trades))], now=now)
    assert r.status is ApplyStatus.OK, r
    return r


def exact(engine: Engine, trades: list[Trade], at: int) -> None:
    reader = Reader(engine.client, S, engine.scripts)
    for instant in (at, at + 30_000, at + 5 * 60_000):
        assert_matches_reference(reader, trades, instant, S.windows, [TOKEN])


def test_in_order_batch_touches_what_it_adds(hot: Engine) -> None:
    new = [trade(N + j, AT + 1 + j) for j in range(10)]
    r = apply(hot, new, now=AT + 10)
    assert r.applied == 10
    # the tail read, 10 pushed, each window's start moves by one entry: a chunk or two
    assert r.touched <= 1 + 10 + len(S.windows) * (2 + 16) + 2 * len(S.windows), r
    assert r.scanned == 0
    exact(hot, HISTORY + new, AT + 10)


@pytest.mark.parametrize(
    ("where", "position"), [("head", 1), ("middle", N // 2 + 1), ("nine-tenths", N * 9 // 10)]
)
def test_late_insert_is_a_binary_search_and_one_linsert(hot: Engine, where, position) -> None:
    x = trade(N, BASE + (position - 1) * STEP + STEP // 2, ident=f"late-{where}")
    r = apply(hot, [x], now=AT)
    assert r.applied == 1
    # tail + at most LOG + 1 probes + the LINSERT + open/close reads of the windows
    assert r.touched <= 1 + (LOG + 1) + 1 + 2 * len(S.windows), r
    assert r.scanned == position + 1  # what LINSERT walks in C to reach its pivot
    assert hot.client.lindex(TokenKeys(TOKEN).trades, position).decode() == x.entry
    exact(hot, [*HISTORY, x], AT)


def test_late_entries_spread_over_the_list_in_one_call(hot: Engine) -> None:
    positions = (1, N // 2 + 1, N * 9 // 10, N - 100)
    xs = [
        trade(N + j, BASE + (p - 1) * STEP + STEP // 2, ident=f"spread-{j}")
        for j, p in enumerate(positions)
    ]
    r = apply(hot, xs, now=AT)
    assert r.applied == len(xs)
    # each placed by a search from the previous one; the last one spliced near the end
    assert r.touched <= 1 + len(xs) * (LOG + 2) + 2 * 100 + 2 * len(S.windows), r
    assert r.scanned == sum(p + 1 + j for j, p in enumerate(positions[:-1]))
    exact(hot, [*HISTORY, *xs], AT)


@pytest.mark.parametrize("back", [10, 200, 5_000])
def test_late_insert_near_the_end_splices_the_tail_after_it(hot: Engine, back: int) -> None:
    """Cheaper than LINSERT's scan from the head: the elements after it move, no more."""
    position = N - back
    x = trade(N, BASE + (position - 1) * STEP + STEP // 2, ident=f"back-{back}")
    r = apply(hot, [x], now=AT)
    assert r.applied == 1
    assert r.touched <= 1 + (LOG + 1) + 2 * back + 1 + 2 * len(S.windows), r
    assert r.scanned == 0
    assert hot.client.lindex(TokenKeys(TOKEN).trades, position).decode() == x.entry
    exact(hot, [*HISTORY, x], AT)


def test_several_late_entries_at_the_tail_are_one_splice(hot: Engine) -> None:
    xs = [trade(N + j, AT - 15 * STEP + j, ident=f"tail-{j}") for j in range(3)]
    r = apply(hot, xs, now=AT)
    assert r.applied == 3
    assert r.touched <= 1 + (LOG + 1) + 2 * TAIL_MERGE + 3 + 2 * len(S.windows), r
    assert r.scanned == 0
    exact(hot, [*HISTORY, *xs], AT)


def test_a_duplicate_and_a_late_trade_touch_one_element(hot: Engine) -> None:
    again = trade(N // 2, AT - 5, ident=f"h{N // 2}")  # a known id, another ts
    too_old = trade(N + 1, AT - 3_600_000, ident="too-old")
    r = apply(hot, [again, too_old], now=AT)
    assert (r.applied, r.duplicates, r.late) == (0, 1, 1)
    assert (r.touched, r.scanned) == (1, 0)  # the tail, read by the load checks
    exact(hot, HISTORY, AT)


def test_catch_up_after_everything_expired_walks_nothing(hot: Engine) -> None:
    """A token quiet for longer than its longest window (a janitor catching up after
    an outage): every entry left every window; nothing is walked or read back."""
    later = AT + 3_600_000
    [r] = hot.advance([TOKEN], now=later)
    assert r.status is ApplyStatus.OK and r.last_update == later
    assert (r.touched, r.scanned) == (1, 0), r  # the tail, read by the load checks
    k = TokenKeys(TOKEN)
    assert hot.client.llen(k.trades) == hot.client.scard(k.ids) == 0
    exact(hot, HISTORY, later)
    new = trade(N, later + 5, ident="after")
    apply(hot, [new], now=later + 10)
    exact(hot, [*HISTORY, new], later + 10)


def test_entries_ahead_of_the_clock_are_not_walked(redis_client: redis.Redis) -> None:
    """20,000 entries stamped after last_update: the load finds the windows' end in
    O(log d) reads (it walked back one LINDEX per entry before)."""
    engine = Engine(redis_client, S)
    now = BASE
    ahead = [trade(i, now + 1 + i) for i in range(20_000)]
    for i in range(0, len(ahead), MAX_ENTRIES_PER_CALL):
        apply(engine, ahead[i : i + MAX_ENTRIES_PER_CALL], now=now)
    before = trade(99_999, now - 1_000, ident="before")
    r = apply(engine, [before], now=now)
    assert r.applied == 1
    bound = 1 + 2 * (math.ceil(math.log2(20_000)) + 1) + (LOG + 1) + 1 + 2 * len(S.windows)
    assert r.touched <= bound, r
    assert r.scanned == 1
    exact(engine, [*ahead, before], now)


def assert_stored_state_is_the_reference(engine: Engine, trades: list[Trade], at: int) -> None:
    """The stored aggregates (what a reader answering at last_update sees) are exact."""
    got = engine.client.hgetall(TokenKeys(TOKEN).aggregates)
    want = reference.windows(trades, at, S.windows)
    for w in S.windows:
        assert window_mismatches(stored_metrics(got, w.label), want[w.label]) == [], (at, w.label)


def test_a_long_catch_up_is_cut_into_calls_of_bounded_work(hot: Engine) -> None:
    """A token quiet for 20 minutes (most of its list leaves the 10m and 1h windows):
    each advance walks at most SLIDE_MAX elements per window and stops at an
    instant where its stored state is exact; repeated, it reaches the instant."""
    later = AT + 20 * 60_000
    walks = len(S.windows) + 1  # entering, and leaving each window
    bound = walks * (SLIDE_MAX + CHUNK) + walks + 2 * len(S.windows) + 1
    reached, calls, touched = [], 0, []
    while True:
        [r] = hot.advance([TOKEN], now=later)
        calls += 1
        touched.append(r.touched)
        assert r.touched <= bound and r.scanned == 0, r
        reached.append(r.last_update)
        if calls % 7 == 1:  # intermediate states are exact at their own instant
            assert_stored_state_is_the_reference(hot, HISTORY, r.last_update)
        if not r.behind:
            break
        assert r.last_update < later and calls < 200
    assert r.status is ApplyStatus.OK and r.last_update == later
    assert reached == sorted(set(reached))  # every call moved the windows forward
    # 120,000 entries leave the 1h window: several calls, each of them bounded
    assert calls >= 120_000 // (SLIDE_MAX + CHUNK) and max(touched) > SLIDE_MAX
    assert_stored_state_is_the_reference(hot, HISTORY, later)
    exact(hot, HISTORY, later)


def one_call(engine: Engine, trades: list[Trade], now: int) -> TokenResult:
    """One apply_trades call, as the script answers it (the engine would call again)."""
    raw = engine.scripts.apply_trades(
        # as the engine calls it (TRADEAGG_METRICS=full, with the previous windows' buckets)
        keys=long_apply_keys(TOKEN, True),
        args=[now, "at", windows_arg(S), S.max_token_trades, "\n".join(t.entry for t in trades)],
    )
    return token_result(TOKEN, RawResult(*raw))


def test_a_rebuild_of_a_long_list_is_cut_into_calls_of_bounded_work(hot: Engine) -> None:
    """Indices deleted (what a failed deep check does): each call reads REBUILD_STEP
    elements, applies none of its trades and leaves the list as it was; reads
    answer 'rebuilding' meanwhile; the last call applies the trade, exactly."""
    k = TokenKeys(TOKEN)
    hot.client.delete(k.indices)
    x = trade(N, AT + 5, ident="during")
    reader = Reader(hot.client, S, hot.scripts)
    calls = 0
    while True:
        r = one_call(hot, [x], now=AT + 10)
        calls += 1
        if not r.rebuilding:
            break
        assert r.touched <= REBUILD_STEP + 1 and r.failed, r  # + the first load's tail read
        assert (r.applied, r.last_update) == (0, AT)
        assert hot.client.llen(k.trades) == N
        # the cursor lives in the id index, never among the indices' window labels
        assert not any(f.startswith(b"~") for f in hot.client.hkeys(k.indices))
        assert hot.client.hexists(k.ids, "~rebuild")
        if calls % 50 == 1:
            with pytest.raises(TokenRebuilding):
                reader.read(TOKEN, AT + 10)
        assert calls < N
    assert calls == math.ceil(N / REBUILD_STEP)
    assert (r.status, r.applied, r.rebuilt) == (ApplyStatus.REBUILT, 1, 0), r
    # the last step, the trade appended, windows moved by 10 ms, prices read
    assert r.touched <= REBUILD_STEP + 1 + 2 * len(S.windows) * (2 + 16) + 2 * len(S.windows), r
    held, keys = id_index(hot.client, TOKEN)  # the cursor's fields are gone with it
    assert held == len(keys) == hot.client.llen(k.trades) == N + 1
    assert set(keys) == {id_key(t.id) for t in [*HISTORY, x]}
    exact(hot, [*HISTORY, x], AT + 10)


def test_the_engine_calls_again_until_the_rebuild_is_done(hot: Engine) -> None:
    hot.client.delete(TokenKeys(TOKEN).indices)
    x = trade(N, AT + 5, ident="engine")
    [r] = hot.apply_call([(TOKEN, [x.entry])], now=AT + 10)
    assert (r.status, r.applied, r.rebuilt) == (ApplyStatus.REBUILT, 1, 0), r
    exact(hot, [*HISTORY, x], AT + 10)


def test_a_damaged_element_met_while_rebuilding_is_repaired_in_one_call(
    redis_client: redis.Redis,
) -> None:
    """The stepwise rebuild checks every element; damage falls back to the repairing
    rebuild (one O(n) call: not bounded), which drops the element."""
    engine = Engine(redis_client, S)
    n = 3 * REBUILD_STEP
    history = HISTORY[:n]
    for i in range(0, n, MAX_ENTRIES_PER_CALL):
        apply(engine, history[i : i + MAX_ENTRIES_PER_CALL], now=history[-1].ts)
    k = TokenKeys(TOKEN)
    redis_client.lset(k.trades, 2 * REBUILD_STEP + 7, "garbage")  # met by the third step
    redis_client.delete(k.indices)
    first = one_call(engine, [], now=history[-1].ts)
    assert first.rebuilding and first.touched <= REBUILD_STEP + 1
    [r] = engine.apply_call([(TOKEN, [])], now=history[-1].ts)
    assert (r.status, r.rebuilt) == (ApplyStatus.REBUILT, 1), r
    held, keys = id_index(redis_client, TOKEN)
    assert held == len(keys) == redis_client.llen(k.trades) == n - 1
    exact(engine, [t for i, t in enumerate(history) if i != 2 * REBUILD_STEP + 7], history[-1].ts)


class CountedSteps:
    """verify_token.lua as Integrity calls it, with each step's (first, next) index noted."""

    def __init__(self, integrity: Integrity) -> None:
        self.script, self.steps = integrity._verify, []
        integrity._verify = self

    def __call__(self, keys, args, **kw):
        out = self.script(keys=keys, args=args, **kw)
        if args[2] == "step":
            self.steps.append((int(args[3]), int(out[3])))
        return out


def test_a_deep_check_of_a_long_list_reads_it_in_bounded_steps(hot: Engine) -> None:
    integrity = Integrity(hot.client, S)
    counted = CountedSteps(integrity)
    checks = integrity.check([TOKEN])
    assert (checks.corrupt, checks.checked, checks.unchanged) == ({}, 1, 0)
    assert len(counted.steps) == math.ceil(N / DEEP_STEP)
    assert all(0 < nxt - first <= DEEP_STEP for first, nxt in counted.steps[:-1])
    assert counted.steps[-1][1] == -1  # done, consistent
    assert checks.touched >= N


def test_a_passed_check_in_steps_sets_the_memo_and_the_next_pass_takes_no_step(
    hot: Engine,
) -> None:
    k = TokenKeys(TOKEN)
    integrity = Integrity(hot.client, S)
    counted = CountedSteps(integrity)
    assert not hot.client.exists(k.checked)
    assert integrity.check([TOKEN]).checked == 1
    assert hot.client.get(k.checked) == str(AT).encode()  # set by the last step
    steps = len(counted.steps)
    again = integrity.check([TOKEN])
    assert (again.checked, again.unchanged, again.corrupt) == (0, 1, {})
    assert len(counted.steps) == steps  # answered before any step
    apply(hot, [trade(N, AT + 1, ident="after-memo")], now=AT + 1)
    assert not hot.client.exists(k.checked)  # trades added: the memo is gone


def test_a_deep_check_in_steps_finds_a_misplaced_element(hot: Engine) -> None:
    k = TokenKeys(TOKEN)
    moved = trade(N + 1, BASE + (N // 2) * STEP - 5 * STEP, ident="misplaced")
    hot.client.lset(k.trades, N // 2 + 100, moved.entry)  # parseable, out of order
    integrity = Integrity(hot.client, S)
    counted = CountedSteps(integrity)
    found = integrity.check([TOKEN]).corrupt
    assert "out of order" in found[TOKEN], found
    assert counted.steps[-1] == ((N // 2 + 100) // DEEP_STEP * DEEP_STEP, -1)
    assert not hot.client.exists(k.indices)  # invalidated: the next apply rebuilds it


def test_a_token_changing_between_steps_is_left_for_the_next_pass(hot: Engine) -> None:
    integrity = Integrity(hot.client, S)
    counted = CountedSteps(integrity)
    script = counted.script

    def trade_between(keys, args, **kw):
        if args[2] == "step" and int(args[3]) == 10 * DEEP_STEP:
            apply(hot, [trade(N, AT + 1, ident="between")], now=AT + 1)
        return script(keys=keys, args=args, **kw)

    counted.script = trade_between
    checks = integrity.check([TOKEN])
    assert (checks.corrupt, checks.checked) == ({}, 0)
    assert counted.steps[-1] == (10 * DEEP_STEP, -1)  # stopped there, nothing invalidated
    assert hot.client.exists(TokenKeys(TOKEN).indices)


def test_many_late_entries_in_one_call_are_one_splice_not_one_scan_each(hot: Engine) -> None:
    """200 late trades around nine tenths of the list: 200 LINSERTs would scan
    ~270,000 elements each; moving the 30,000 after them once is cheaper."""
    first = N * 9 // 10
    xs = [
        trade(N + j, BASE + (first + 5 * j) * STEP + STEP // 2, ident=f"many-{j}")
        for j in range(200)
    ]
    r = apply(hot, xs, now=AT)
    assert r.applied == len(xs)
    assert r.scanned == 0, r
    assert r.touched <= 1 + 2 * (LOG + 1) + 2 * (N - first) + 2 * len(xs) + 2 * len(S.windows), r
    exact(hot, [*HISTORY, *xs], AT)


def read_call(engine: Engine, at: int) -> list:
    """One read_window call, as the script answers it (the Reader would catch up)."""
    return engine.scripts.read_window(keys=token_keys(TOKEN), args=[windows_arg(S), at])[0]


def test_a_read_far_ahead_answers_behind_after_bounded_work_and_writes_nothing(
    hot: Engine,
) -> None:
    """A read 20 minutes ahead of a quiet 300,000-trade token (120,000 elements would
    leave the 10m and 1h windows): the script stops once a walk passes SLIDE_MAX."""
    k = TokenKeys(TOKEN)
    before = {key: hot.client.dump(key) for key in [*k.all(), k.ids]}
    raw = read_call(hot, AT + 20 * 60_000)
    assert [raw[0], int(raw[1]), int(raw[2])] == [b"behind", AT + 20 * 60_000, AT]
    walks = len(S.windows) + 1  # entering, and leaving each window
    assert 0 < raw[3] <= 1 + walks * (SLIDE_MAX + CHUNK), raw
    assert {key: hot.client.dump(key) for key in before} == before  # a read never writes
    near = read_call(hot, AT + 5_000)  # 500 elements leave each window: read in one call
    assert near[0] == b"ok" and int(near[2]) == AT


class CountedCatchUp:
    """Engine.apply_calls as a Reader's catch-up calls it, each token result kept."""

    def __init__(self, engine: Engine) -> None:
        self.apply_calls, self.results = engine.apply_calls, []
        engine.apply_calls = self

    def __call__(self, calls, now=None, **kw):
        out = self.apply_calls(calls, now, **kw)
        for outcome in out:
            self.results.extend(outcome)
        return out


def test_a_read_far_ahead_catches_the_token_up_in_bounded_calls_and_is_exact(
    hot: Engine,
) -> None:
    """The Reader advances the token as the janitor would (apply_trades, each call's
    walks bounded), then reads: the answer equals the brute-force reference, and a
    small token read in the same read_many takes one call."""
    later = AT + 20 * 60_000
    small = "Sma11111111111111111111111111111111111111112"
    few = [
        Trade(id=f"s{i}", token=small, side="buy", quote_nano=10**9 + i, price="2.5", ts=AT - i)
        for i in range(3)
    ]
    hot.apply_call([(small, [t.entry for t in few])], now=AT)
    reader = Reader(hot.client, S, hot.scripts)
    counted = CountedCatchUp(reader.engine)
    big, little = reader.read_many([TOKEN, small], later)
    walks = len(S.windows) + 1
    bound = walks * (SLIDE_MAX + CHUNK) + walks + 2 * len(S.windows) + 1
    assert {r.token for r in counted.results} == {TOKEN}  # only the token that was behind
    assert len(counted.results) >= 120_000 // (SLIDE_MAX + CHUNK)
    assert all(r.touched <= bound and r.scanned == 0 for r in counted.results), counted.results
    assert [r.behind for r in counted.results] == [True] * (len(counted.results) - 1) + [False]
    assert (big.at, big.last_update, little.last_update) == (later, later, AT)
    assert int(hot.client.get(TokenKeys(TOKEN).last_update)) == later
    assert_stored_state_is_the_reference(hot, HISTORY, later)
    exact(hot, HISTORY, later)
    assert_matches_reference(reader, few, later, S.windows, [small])


def test_a_read_far_past_the_store_clock_is_refused_after_catching_up_to_it(
    redis_client: redis.Redis,
) -> None:
    """A live token (trades over the last minute, real clock): a read 20 minutes ahead
    of Redis' TIME cannot be caught up (no last_update in the future): FarAhead,
    the token advanced no further than TIME; a read a second ahead is exact."""
    engine = Engine(redis_client, S)
    now = int(redis_client.time()[0]) * 1000
    live = [trade(i, now - 60_000 + i * 10) for i in range(5_000)]
    for i in range(0, len(live), MAX_ENTRIES_PER_CALL):
        batch = live[i : i + MAX_ENTRIES_PER_CALL]
        [r] = engine.apply_call([(TOKEN, [t.entry for t in batch])])
        assert r.status is ApplyStatus.OK
    reader = Reader(redis_client, S, engine.scripts)
    with pytest.raises(FarAhead) as caught:
        reader.read(TOKEN, now + 20 * 60_000)
    served = redis_client.time()
    clock = int(served[0]) * 1000 + int(served[1]) // 1000
    assert caught.value.last_update <= clock
    assert int(redis_client.get(TokenKeys(TOKEN).last_update)) == caught.value.last_update
    ahead = caught.value.last_update + 1_000
    assert_matches_reference(reader, live, ahead, S.windows, [TOKEN])


SEED_MAX = 2048  # lua/lib/slide.lua: list elements one call takes to seed one window
S2 = Settings(windows=parse_windows("1m,5m,10m,30m,1h"), clock="wall", max_token_trades=1_000_000)


def assert_exact_since_complete_from(view, trades: list[Trade], at: int) -> list[str]:
    """Every window equals the reference; a partial one, over the trades after its
    complete_from - w (what it claims to hold). Returns the partial windows' labels."""
    partial = []
    for w in S2.windows:
        got = view.windows[w.label]
        since = at - w.ms
        if got.partial:
            partial.append(w.label)
            assert got.complete_from > at, (w.label, got)
            since = got.complete_from - w.ms
        want = reference.window(reference.distinct([t for t in trades if t.ts > since]), at, w)
        assert window_mismatches(got, want) == [], (w.label, since)
    return partial


def test_windows_added_to_a_hot_token_are_seeded_in_calls_of_bounded_work(hot: Engine) -> None:
    """A release adding 5m and 30m to a 300,000-trade token carrying 1m,10m,1h: each
    call takes at most SEED_MAX elements per window (24,000 and 120,000 to take),
    answers BEHIND until done; meanwhile the new windows read partial, exact over
    what they claim, a late trade inside the 30m window counts once, the deep
    check passes; at the end every window is exact and no mark is left."""
    k = TokenKeys(TOKEN)
    engine = Engine(hot.client, S2, hot.scripts)
    reader = Reader(hot.client, S2, hot.scripts)
    late = trade(N + 1, AT - 25 * 60_000 + 3, ident="late-while-seeding")
    trades = list(HISTORY)
    seeding = 2  # windows to seed
    bound = 1 + seeding * (SEED_MAX + CHUNK) + 2 * len(S2.windows) + LOG + 4
    calls, seen_partial = 0, set()
    while True:
        entries = [late.entry] if calls == 3 else []  # a late trade, placed by LINSERT
        raw = engine.scripts.apply_trades(
            # as the engine calls it (TRADEAGG_METRICS=full, the previous windows kept)
            keys=long_apply_keys(TOKEN, True),
            args=[AT, "at", windows_arg(S2), S2.max_token_trades, "\n".join(entries)],
        )
        r = token_result(TOKEN, RawResult(*raw))
        if entries:
            trades.append(late)
            assert r.applied == 1 and r.scanned > 0, r
        else:
            assert r.scanned == 0, r
        calls += 1
        assert r.touched <= bound + (LOG + 2 if entries else 0), (calls, r)
        assert r.last_update == AT
        if calls % 9 == 1:
            seen_partial.update(assert_exact_since_complete_from(reader.read(TOKEN, AT), trades, AT))
            checks = Integrity(hot.client, S2).check([TOKEN])
            assert (checks.corrupt, checks.checked) == ({}, 1), checks
        if not r.behind:
            break
        assert calls < 200
    assert seen_partial == {"5m", "30m"}
    assert 120_000 // (SEED_MAX + CHUNK) <= calls <= 120_000 // SEED_MAX + 3
    view = reader.read(TOKEN, AT)
    assert assert_exact_since_complete_from(view, trades, AT) == []
    assert not [f for f in hot.client.hkeys(k.ids) if f.startswith(b"~")]
    assert not [f for f in hot.client.hkeys(k.aggregates) if f.endswith(b":complete_from")]
    # the added windows' previous windows start over (lua/lib/pmakers.lua), the others'
    # go on: partial, exact over what they claim (reference_mismatches takes their since)
    prev_partial = [f for f in hot.client.hkeys(k.aggregates) if f.endswith(b":prev_complete_from")]
    assert sorted(prev_partial) == [b"30m:prev_complete_from", b"5m:prev_complete_from"]
    for instant in (AT, AT + 30_000, AT + 5 * 60_000):
        assert_matches_reference(reader, trades, instant, S2.windows, [TOKEN])
    assert Integrity(hot.client, S2).check([TOKEN]).corrupt == {}


def test_a_reader_with_windows_the_token_lacks_counts_them_in_bounded_memory_work(
    hot: Engine,
) -> None:
    """Workers carry 1m,10m,1h; a reader configured with 5m and 30m as well: its read
    seeds them in memory from their shorter neighbours, SEED_MAX elements each at
    most (partial, exact over what it claims), writes nothing, adds no window."""
    k = TokenKeys(TOKEN)
    before = {key: hot.client.dump(key) for key in [*k.all(), k.ids]}
    view = Reader(hot.client, S2, hot.scripts).read(TOKEN, AT)
    assert assert_exact_since_complete_from(view, HISTORY, AT) == ["5m", "30m"]
    # each took SEED_MAX (and the rest of one ms, a chunk at most) before its neighbour's start
    for label, shorter in (("5m", 60_000), ("30m", 600_000)):
        w = next(x for x in S2.windows if x.label == label)
        held = (AT - (view.windows[label].complete_from - w.ms)) // STEP
        assert SEED_MAX <= held - shorter // STEP <= SEED_MAX + CHUNK, (label, held)
    assert {key: hot.client.dump(key) for key in before} == before
    # a read far ahead of last_update catches up with the token's own windows only
    Reader(hot.client, S2, hot.scripts).read(TOKEN, AT + 20 * 60_000)
    assert sorted(hot.client.hkeys(k.indices)) == [b"10m", b"1h", b"1m"]
