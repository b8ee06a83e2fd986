"""A long list rebuilt in steps (issue 11) keeps what rolling deploys rely on: every
window the token carried, and a partial window's complete_from; the rebuild's
cursor is never among the indices' window labels (lua/lib/rebuild.lua)."""

from __future__ import annotations

import math

from tests.support import reference
from tests.support.checks import window_mismatches
from tests.support.idindex import id_index, id_key
from tradeagg.contract.keys import TokenKeys, full_apply_keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import ApplyStatus, Engine, RawResult, token_result, windows_arg
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

TOKEN = "So11111111111111111111111111111111111111112"
OLD = Settings(windows=parse_windows("1m,5m"))
NEW = Settings(windows=parse_windows("1m,5m,1h"))
REBUILD_STEP = 1000  # lua/lib/rebuild.lua
N = 3_500
T0 = 1_700_000_000_000


def trade(i: int) -> Trade:
    return Trade(
        id=f"r{i}",
        token=TOKEN,
        side="buy" if i % 3 else "sell",
        quote_nano=1_000_000_000 + i * 1_000_003,
        price=f"{1 + (i % 89) / 100:.2f}",
        ts=T0 + i * 10,
    )


def step(engine: Engine, settings: Settings, now: int):
    """One apply_trades call without trades, as the script answers it."""
    raw = engine.scripts.apply_trades(
        keys=full_apply_keys(TOKEN),  # as the engine calls it (TRADEAGG_METRICS=full)
        args=[now, "at", windows_arg(settings), 1_000_000, ""],
    )
    return token_result(TOKEN, RawResult(*raw))


def test_a_stepwise_rebuild_keeps_carried_windows_and_their_complete_from(redis_client) -> None:
    old, new = Engine(redis_client, OLD), Engine(redis_client, NEW)
    trades = [trade(i) for i in range(N)]
    at = trades[-1].ts
    for i in range(0, N, 1_000):
        old.apply_records([t.record for t in trades[i : i + 1_000]], now=at)
    # the new release adds 1h: partial (the list was kept for 5 minutes only)
    [r] = new.advance([TOKEN], now=at)
    assert r.status is ApplyStatus.OK, r
    k = TokenKeys(TOKEN)
    reader = Reader(redis_client, NEW)
    before = reader.read(TOKEN, at)
    assert before.windows["1h"].complete_from is not None
    # the id index lost: the old release's next call rebuilds the token in steps
    redis_client.delete(k.ids)
    calls = 0
    while True:
        r = step(old, OLD, at)
        calls += 1
        if not r.rebuilding:
            break
        labels = {f.decode() for f in redis_client.hkeys(k.indices)}
        assert labels == {"1m", "5m", "1h"}, labels  # no cursor field among the labels
        assert calls < N
    assert calls == math.ceil(N / REBUILD_STEP)
    assert (r.status, r.rebuilt) == (ApplyStatus.REBUILT, 0), r
    assert {f.decode() for f in redis_client.hkeys(k.indices)} == {"1m", "5m", "1h"}
    held, keys = id_index(redis_client, TOKEN)  # no cursor field left in the index
    assert held == len(keys) == redis_client.llen(k.trades) == N
    assert set(keys) == {id_key(t.id) for t in trades}
    after = reader.read(TOKEN, at)
    assert after.windows == before.windows  # 1h still there, still partial from the same instant
    want = reference.windows(trades, at, OLD.windows)
    for w in OLD.windows:
        assert window_mismatches(after.windows[w.label], want[w.label]) == [], w.label


def test_the_last_step_trims_what_left_the_longest_window_from_list_and_id_index(
    redis_client,
) -> None:
    """The rebuild counts as of last_update; trades older than the longest window
    then are trimmed by the last step, and the rebuilt id index holds exactly the
    ids still listed (a trimmed id is a new trade again)."""
    old = Engine(redis_client, OLD)
    trades = [trade(i) for i in range(N)]
    at = trades[-1].ts
    for i in range(0, N, 1_000):
        old.apply_records([t.record for t in trades[i : i + 1_000]], now=at)
    k = TokenKeys(TOKEN)
    later = at + 5 * 60_000 - 20 * 10  # all but the newest 20 trades are older than 5m then
    redis_client.set(k.last_update, later, keepttl=True)
    redis_client.delete(k.indices)
    calls = 0
    while True:
        r = step(old, OLD, later)
        calls += 1
        if not r.rebuilding:
            break
        assert calls < N
    assert calls == math.ceil(N / REBUILD_STEP) and r.status is ApplyStatus.REBUILT, r
    kept = [t for t in trades if t.ts > later - 5 * 60_000]
    assert len(kept) == 20
    held, keys = id_index(redis_client, TOKEN)
    assert held == len(keys) == redis_client.llen(k.trades) == len(kept)
    assert set(keys) == {id_key(t.id) for t in kept}
    view = Reader(redis_client, OLD).read(TOKEN, later)
    want = reference.windows(kept, later, OLD.windows)
    for w in OLD.windows:
        assert window_mismatches(view.windows[w.label], want[w.label]) == [], w.label
