"""Reads never write, and stay exact when the stored state cannot be used as is."""

from __future__ import annotations

import pytest
import redis

from tests.support import reference
from tests.support.checks import assert_matches_reference
from tradeagg.clock import now_ms
from tradeagg.contract.keys import token_keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.rank import Ranker
from tradeagg.engine.read import Reader
from tradeagg.errors import PastInstant, StoreError
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"
B = "0x" + "ab" * 20


def feed(now: int) -> list[Trade]:
    return [
        Trade(
            id=f"t{i}",
            token=A if i % 3 else B,
            side="buy" if i % 2 else "sell",
            quote_nano=1_000_000_000 + 7 * i,
            price=str(1 + i % 5),
            ts=now - 600_000 + i * 9_000,
        )
        for i in range(66)
    ]


def snapshot(client: redis.Redis) -> dict[bytes, bytes | None]:
    return {k: client.dump(k) for k in sorted(client.keys("token:*"))}


def test_reads_with_other_windows_are_exact_and_write_nothing(redis_client) -> None:
    """A `show` or `top` configured with other windows than the workers (TRADEAGG_WINDOWS
    differs) answers for its own windows, counted from the list, and leaves the store alone."""
    now = now_ms()
    trades = feed(now)
    writer = Settings()
    Engine(redis_client, writer).apply_records([t.record for t in trades], now=now)
    before = snapshot(redis_client)
    other = Settings(windows=parse_windows("30s,1m,2m"))
    assert_matches_reference(
        Reader(redis_client, other), trades, now + 1_000, other.windows, [A, B]
    )
    ranked = Ranker(redis_client, other).top("2m", "volume", at=now + 1_000)
    assert [r.token for r in ranked.rows] == sorted(
        (A, B),
        key=lambda t: (
            -reference.windows([x for x in trades if x.token == t], now + 1_000, other.windows)[
                "2m"
            ]["volume"]
        ),
    )
    assert snapshot(redis_client) == before
    assert_matches_reference(
        Reader(redis_client, writer), trades, now + 2_000, writer.windows, [A, B]
    )


def test_a_read_of_a_damaged_token_in_the_future_writes_nothing(redis_client) -> None:
    now = now_ms()
    trades = feed(now)
    s = Settings()
    engine = Engine(redis_client, s)
    engine.apply_records([t.record for t in trades], now=now)
    redis_client.hset(token_keys(A)[2], "1m:buys", 7)  # totals no longer match the list
    before = snapshot(redis_client)
    later = now + 7_200_000
    assert_matches_reference(Reader(redis_client, s), trades, later, s.windows, [A])
    assert snapshot(redis_client) == before
    # the token's clock did not move: a trade of now still applies, and repairs the token
    [r] = engine.apply_records([f"{A} {now} 0 b 5000000000 3 fresh"], now=now + 10)
    assert (r.applied, r.late, r.rebuilt >= 0) == (1, 0, True)


def test_show_without_at_follows_a_worker_clock_that_runs_ahead(redis_client) -> None:
    now = now_ms()
    trades = feed(now)
    s = Settings()
    Engine(redis_client, s).apply_records([t.record for t in trades], now=now + 3_000)
    view = Reader(redis_client, s).read(A)
    assert view.at == now + 3_000 == view.last_update
    assert_matches_reference(Reader(redis_client, s), trades, view.at, s.windows, [A])


def test_read_without_at_of_a_token_moving_twice_during_it_reads_its_newer_state(
    redis_client,
) -> None:
    """The SSE hub reads changed tokens as of now: a token a worker applies after our "now"
    is read again as of its own last_update, and one applied once more before that second
    read is read as of that newer state (it used to raise PastInstant and stop the hub)."""
    now = now_ms()
    trades = feed(now)
    s = Settings()
    engine = Engine(redis_client, s)
    engine.apply_records([t.record for t in trades[:40]], now=now + 3_000)
    reader = Reader(redis_client, s, batch=1)
    fetch, calls = reader.fetch, []

    def fetch_then_apply(tokens, ats):
        got = fetch(tokens, ats)
        calls.append(list(ats))
        if len(calls) == 1:  # a worker applies again between our two reads
            engine.apply_records([t.record for t in trades[40:]], now=now + 6_000)
        return got

    reader.fetch = fetch_then_apply
    view_a, view_b = reader.read_many([A, B])
    assert calls[0][0] <= now + 3_000 and calls[1] == [None, None]  # both moved: read again
    assert view_a.at == view_a.last_update == now + 6_000 == view_b.at
    assert_matches_reference(Reader(redis_client, s), trades, now + 6_000, s.windows, [A, B])
    assert view_a == Reader(redis_client, s).read(A, now + 6_000)


def test_a_ranking_read_aimed_ahead_is_read_once_where_one_at_now_catches_up(
    redis_client,
) -> None:
    """A token applied past our "now" makes a ranking read as of now read every token
    again (catch-up); aimed ahead of it (the hub's repeated pass), one read does."""
    now = now_ms()
    trades = feed(now)
    s = Settings()
    Engine(redis_client, s).apply_records([t.record for t in trades], now=now + 2_000)
    for ahead, reads in ((0, 2), (10_000, 1)):
        ranker = Ranker(redis_client, s)
        calls: list = []

        def counted(tokens, ats, fetch=ranker.reader.fetch, calls=calls):
            calls.append(ats)
            return fetch(tokens, ats)

        ranker.reader.fetch = counted
        before = now_ms()
        at, views = ranker.read_all([A, B], None, ahead_ms=ahead)
        assert len(calls) == reads and at is not None and at >= before + ahead
        assert all(v.at == at for v in views)
        assert_matches_reference(Reader(redis_client, s), trades, at, s.windows, [A, B])


def test_other_windows_are_added_without_a_rebuild_and_none_is_retired(redis_client) -> None:
    """A release with other TRADEAGG_WINDOWS adds its windows to the token (counted from the
    list: complete, as the list was kept for a longer one) and leaves the others alone."""
    now = now_ms()
    trades = feed(now)
    old = Settings(windows=parse_windows("1m,5m,1h"))
    Engine(redis_client, old).apply_records([t.record for t in trades], now=now)
    new = Settings(windows=parse_windows("30s,5m"))
    [r] = Engine(redis_client, new).advance([A], now=now + 1_000)
    assert (r.rebuilt, r.reason, r.failed) == (-1, "", False)
    labels = {f.decode().split(":")[0] for f in redis_client.hkeys(token_keys(A)[2])}
    assert labels == {"30s", "1m", "5m", "1h"}
    assert {k.decode() for k in redis_client.hkeys(token_keys(A)[1])} == labels
    for s in (new, old):
        view = Reader(redis_client, s).read(A, now + 1_000)
        assert not [w for w in view.windows.values() if w.partial]
        assert_matches_reference(Reader(redis_client, s), trades, now + 1_000, s.windows, [A])
    [again] = Engine(redis_client, old).advance([A], now=now + 2_000)
    assert (again.rebuilt, again.reason) == (-1, "")


def test_a_window_the_token_does_not_carry_keeps_its_boundaries(redis_client) -> None:
    """Seeded from its neighbour for a read: at - w < ts <= at, like every window."""
    at = now_ms()
    trades = [
        Trade(id=f"b{i}", token=A, side="buy", quote_nano=10**9 + i, price=str(1 + i), ts=ts)
        for i, ts in enumerate((at - 300_000, at - 299_999, at - 30_000, at - 29_999, at))
    ]
    Engine(redis_client, Settings(windows=parse_windows("1m,1h"))).apply_records(
        [t.record for t in trades], now=at
    )
    other = Settings(windows=parse_windows("30s,5m,1h"))
    view = Reader(redis_client, other).read(A, at)
    assert (view.windows["30s"].trades, view.windows["5m"].trades) == (2, 4)
    assert_matches_reference(Reader(redis_client, other), trades, at, other.windows, [A])


def test_a_window_left_out_of_the_config_keeps_its_fields_until_retired(redis_client) -> None:
    now = now_ms()
    trades = feed(now)
    Engine(redis_client, Settings(windows=parse_windows("1m,5m,1h"))).apply_records(
        [t.record for t in trades], now=now
    )
    fewer = Settings(windows=parse_windows("1m,1h"))
    [r] = Engine(redis_client, fewer).advance([A], now=now + 1_000)
    assert r.rebuilt == -1 and not r.failed
    assert [f for f in redis_client.hkeys(token_keys(A)[2]) if f.startswith(b"5m:")]
    assert_matches_reference(Reader(redis_client, fewer), trades, now + 1_000, fewer.windows, [A])
    # the 5m window went on sliding with the others: a reader configured with it is exact
    both = Settings(windows=parse_windows("1m,5m,1h"))
    assert_matches_reference(Reader(redis_client, both), trades, now + 1_000, both.windows, [A])


def test_read_many_is_read_per_token_in_fewer_round_trips(redis_client) -> None:
    s = Settings(windows=parse_windows("1m,10m"), clock="event")
    now = now_ms()
    trades = feed(now)
    Engine(redis_client, s).apply_records([t.record for t in trades], now=now)
    unknown = "0x" + "cd" * 20
    tokens = [A, unknown, B, A]
    one_by_one = Reader(redis_client, s)
    for at in (None, now + 5_000):
        want = [one_by_one.read(t, at) for t in tokens]
        for batch in (1, 2, 500):
            got = Reader(redis_client, s, batch=batch).read_many(tokens, at)
            assert [(v.token, v.last_update, v.windows) for v in got] == [
                (v.token, v.last_update, v.windows) for v in want
            ]
            # an unknown token read as of "now" is stamped with the clock of its read
            known = [i for i, v in enumerate(want) if at is not None or v.last_update]
            assert [got[i].at for i in known] == [want[i].at for i in known]
    assert got[1].last_update is None and got[1].windows["10m"].trades == 0
    assert got[0].windows["10m"].trades == len([t for t in trades if t.token == A])


def test_read_many_before_a_last_update_names_the_first_and_the_newest(redis_client) -> None:
    s = Settings(windows=parse_windows("1m"), clock="event")
    now = now_ms()
    engine = Engine(redis_client, s)
    engine.apply_records([f"{A} {now - 10} 0 b 1 1 a"], now=now - 10)
    engine.apply_records([f"{B} {now} 0 b 1 1 b"], now=now)
    with pytest.raises(PastInstant) as info:
        Reader(redis_client, s, batch=1).read_many([A, B], at=now - 20)
    assert (info.value.token, info.value.last_update, info.value.newest) == (A, now - 10, now)
    assert str(info.value) == f"at {now - 20} is earlier than last_update {now - 10} of token {A}"


def _token_trades(token: str, n: int, first: int, step: int) -> list[str]:
    return [
        f"{token} {first + i * step} 0 {'b' if i % 3 else 's'} {1_000_000_000 + 13 * i} "
        f"{1 + i % 7} {token[-4:]}{i}"
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "s",
    [
        Settings(clock="event"),
        Settings(clock="event", metrics="seed"),
        Settings(clock="event", windows=parse_windows("1m,5m,15m,30m,1h,6h,24h")),
    ],
    ids=["full", "seed", "seven-windows"],
)
def test_a_call_of_several_tokens_answers_each_as_a_call_of_one(redis_client, s) -> None:
    """read_window.lua reads several tokens per call: each token's answer is the one a
    call of that token alone gives (ok, unknown, past, behind, damaged and counted from
    the list, rebuilding, failed), whatever the other tokens of the call."""
    now = now_ms()
    engine = Engine(redis_client, s)
    tok = {
        name: "0x" + f"{k:02x}" * 20
        for k, name in enumerate(
            ("ok", "unknown", "past", "behind", "damaged", "rebuilding", "failed", "ok2"), 1
        )
    }
    records = [
        *_token_trades(tok["ok"], 60, now - 600_000, 9_000),
        *_token_trades(tok["ok2"], 40, now - 300_000, 7_000),
        *_token_trades(tok["past"], 20, now - 100_000, 5_000),
        *_token_trades(tok["behind"], 5_000, now - 50_000, 10),  # 1m: > SLIDE_MAX leave it
        *_token_trades(tok["damaged"], 50, now - 500_000, 10_000),
        *_token_trades(tok["rebuilding"], 1_200, now - 120_000, 100),  # > REBUILD_STEP
        *_token_trades(tok["failed"], 30, now - 300_000, 10_000),
    ]
    for i in range(0, len(records), 1_000):
        engine.apply_records(records[i : i + 1_000], now=now)
    for name in ("damaged", "rebuilding"):  # totals no longer match the list
        redis_client.hset(token_keys(tok[name])[2], "1m:buys", 7)
    # an element its 1m window leaves is damaged: met while sliding, its read raises
    redis_client.lset(token_keys(tok["failed"])[0], 26, "garbage")
    reader = Reader(redis_client, s)
    ats = {
        "ok": now + 1_000,
        "unknown": now,
        "past": now - 200_000,
        "behind": now + 35_000,
        "damaged": now + 2_000,
        "rebuilding": now + 3_000,
        "failed": now + 100_000,
        "ok2": None,
    }

    def alone(name: str):
        [raw] = reader._script([tok[name]], [ats[name]])
        return raw

    def same(a, b) -> bool:
        if isinstance(a, Exception) or isinstance(b, Exception):
            return type(a) is type(b) and str(a) == str(b)
        return a == b

    want = {name: alone(name) for name in tok}
    kinds = {name: want[name][0] if isinstance(want[name], list) else "error" for name in tok}
    assert kinds == {
        "ok": b"ok",
        "unknown": b"unknown",
        "past": b"past",
        "behind": b"behind",
        "damaged": b"ok",
        "rebuilding": b"rebuilding",
        "failed": "error",
        "ok2": b"ok",
    }
    assert want["damaged"][3] and not want["ok"][3]  # counted from the list, and why
    names = list(tok)
    for order in (names, names[::-1], [*names[3:], *names[:3], "ok", "behind", "ok"]):
        got = reader._script([tok[n] for n in order], [ats[n] for n in order])
        assert len(got) == len(order)
        for name, raw in zip(order, got, strict=True):
            assert same(raw, want[name]), (name, order)
    # the Reader: every answer in the caller's order, in calls of READ_GROUP tokens
    fine = [n for n in names if n != "failed"] * 5
    assert reader.fetch([tok[n] for n in fine], [ats[n] for n in fine]) == [want[n] for n in fine]
    with pytest.raises(StoreError, match="batched read failed"):
        reader.fetch([tok[n] for n in names], [ats[n] for n in names])
    with pytest.raises(StoreError, match=f"read of token {tok['failed']} failed"):
        reader.fetch([tok["failed"]], [ats["failed"]])
