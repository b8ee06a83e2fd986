"""CONTRACT §1: the same `id` seen twice is one trade, whatever its ts or seq."""

from __future__ import annotations

import redis

from tests.support.checks import assert_matches_reference
from tests.support.idindex import id_index, id_key
from tradeagg.contract.entry import id_digest
from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import ApplyStatus, Engine
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"


def t(ident: str, ts: int, seq: int = 0, quote: int = 1_000_000_000, side: str = "buy") -> Trade:
    return Trade(id=ident, token=A, side=side, quote_nano=quote, price="2", ts=ts, seq=seq)


def test_an_id_seen_again_with_other_ts_or_seq_is_a_duplicate(redis_client: redis.Redis) -> None:
    s = Settings(windows=parse_windows("10s,1m"))
    engine = Engine(redis_client, s)
    now = 1_700_000_000_000
    first = [t("x", now - 5_000), t("y", now - 4_000), t("z", now - 3_000, quote=7)]
    [r] = engine.apply_records([x.record for x in first], now=now)
    assert (r.applied, r.duplicates) == (3, 0)
    # the same ids again: later (appended), earlier (merged), other seq, other side and quote
    again = [t("x", now - 1_000), t("y", now - 4_500), t("z", now - 3_000, seq=4, side="sell")]
    [r] = engine.apply_records([x.record for x in again], now=now + 10)
    assert (r.applied, r.duplicates) == (0, 3)
    # within one batch: one of the two copies
    [r] = engine.apply_records([t("w", now - 2_000).record, t("w", now - 100).record], now=now + 20)
    assert (r.applied, r.duplicates) == (1, 1)
    view = Reader(redis_client, s).read(A, now + 20)
    assert (view.windows["1m"].buys, view.windows["1m"].sells) == (4, 0)
    k = TokenKeys(A)
    count, held = id_index(redis_client, A)
    assert count == len(held) == redis_client.llen(k.trades) == 4
    assert sorted(held) == sorted(id_key(i) for i in "xyzw")
    assert 0 < redis_client.pttl(k.ids) <= 60_000


def test_the_id_index_follows_the_list_and_is_rebuilt_when_lost(redis_client) -> None:
    s = Settings(windows=parse_windows("1s,5s"))
    engine = Engine(redis_client, s)
    now = 1_700_000_000_000
    trades = [t(f"i{j}", now + j * 100, quote=1_000_000_000 + j) for j in range(100)]
    engine.apply_records([x.record for x in trades[:60]], now=now + 5_900)
    k = TokenKeys(A)
    assert id_index(redis_client, A)[0] == redis_client.llen(k.trades) == 50  # ts > now + 900
    engine.apply_records([x.record for x in trades[60:]], now=now + 12_000)
    # the list keeps only the last 5 s; the id index shrinks with it
    count, held = id_index(redis_client, A)
    assert count == len(held) == redis_client.llen(k.trades) == 29  # ts > now + 7000
    assert sorted(held) == sorted(id_key(f"i{j}") for j in range(71, 100))
    redis_client.delete(k.ids)
    [r] = engine.apply_records([x.record for x in trades[95:]], now=now + 12_000)
    assert r.rebuilt >= 0 and "id index" in r.reason and r.applied == 0 and r.duplicates == 5
    count, rebuilt = id_index(redis_client, A)
    assert count == 29 and sorted(rebuilt) == sorted(held)
    assert_matches_reference(Reader(redis_client, s), trades, now + 12_000, s.windows, [A])


def listed_keys(client: redis.Redis) -> list[bytes]:
    """The id keys of the trades in the token's list, from their ids (6th field)."""
    return sorted(
        id_key(e.split(b" ")[5].decode()) for e in client.lrange(TokenKeys(A).trades, 0, -1)
    )


def test_the_id_index_grows_and_shrinks_with_the_list(redis_client) -> None:
    """Buckets split as the list grows and merge as it is trimmed: at every step the
    index holds exactly the listed ids, and every listed id is a duplicate."""
    s = Settings(windows=parse_windows("1s,10s"))
    engine = Engine(redis_client, s)
    now = 1_700_000_000_000
    trades = [t(f"g{j}", now + j, quote=1_000_000_000 + j) for j in range(6_000)]
    for i in range(0, 6_000, 500):
        engine.apply_records([x.record for x in trades[i : i + 500]], now=now + i + 499)
    count, held = id_index(redis_client, A)
    assert count == redis_client.llen(TokenKeys(A).trades) == 6_000
    assert sorted(held) == listed_keys(redis_client)
    assert int(redis_client.hget(TokenKeys(A).ids, "N")) > 100  # split many times
    # the same ids at another ts: only the index can tell they are duplicates
    again = [t(x.id, x.ts + 3) for x in trades[::7]]
    [r] = engine.apply_records([x.record for x in again], now=now + 6_000)
    assert (r.applied, r.duplicates) == (0, len(again))
    # 9.7 s later the list keeps 299 of them and a new one: buckets merge back
    [r] = engine.apply_records([t("late-comer", now + 15_500).record], now=now + 15_700)
    assert r.applied == 1
    while r.behind:  # each call slides by a bounded number of elements (issue 11)
        count, held = id_index(redis_client, A)  # exact at every intermediate instant
        assert count == redis_client.llen(TokenKeys(A).trades)
        assert sorted(held) == listed_keys(redis_client)
        [r] = engine.advance([A], now=now + 15_700)
    count, held = id_index(redis_client, A)
    assert count == redis_client.llen(TokenKeys(A).trades) == 300
    assert sorted(held) == listed_keys(redis_client)
    assert int(redis_client.hget(TokenKeys(A).ids, "N")) < 40
    kept = [t(x.id, x.ts + 1, seq=1) for x in trades if x.ts > now + 5_700]
    [r] = engine.apply_records([x.record for x in kept], now=now + 15_700)
    assert (r.applied, r.duplicates) == (0, 299)
    assert_matches_reference(
        Reader(redis_client, s),
        [*trades, t("late-comer", now + 15_500)],
        now + 15_700,
        s.windows,
        [A],
    )


def as_older_release(client: redis.Redis, token: str) -> None:
    """Rewrite a token as releases before this id index stored it: every list element
    ends with its id's 20-hex digest, and the id index is a Set of those digests."""
    k = TokenKeys(token)
    elements = [e.decode() for e in client.lrange(k.trades, 0, -1)]
    ttl = client.pttl(k.trades)
    older = [f"{e} {id_digest(e.split(' ')[5])}" for e in elements]
    pipe = client.pipeline()
    pipe.delete(k.trades, k.ids)
    pipe.rpush(k.trades, *older)
    pipe.sadd(k.ids, *[e.split(" ")[6] for e in older])
    pipe.pexpire(k.trades, ttl)
    pipe.pexpire(k.ids, ttl)
    pipe.execute()


def test_a_token_of_the_older_format_upgrades_exactly(redis_client) -> None:
    """A token written by the previous release (digests in the elements, a Set as
    id index) reads exactly, and its next apply rebuilds it into the new format
    without losing a trade or forgetting an id."""
    s = Settings(windows=parse_windows("10s,1m"))
    engine = Engine(redis_client, s)
    reader = Reader(redis_client, s)
    now = 1_700_000_000_000
    old = [
        t(
            f"o{j}",
            now + j * 97,
            seq=j % 3,
            quote=1_000_000_000 + j,
            side="buy" if j % 4 else "sell",
        )
        for j in range(400)
    ]
    engine.apply_records([x.record for x in old], now=now + 40_000)
    as_older_release(redis_client, A)
    k = TokenKeys(A)
    assert redis_client.type(k.ids) == b"set" and len(redis_client.lindex(k.trades, 0).split()) == 7
    assert_matches_reference(reader, old, now + 41_000, s.windows, [A])  # read as it is
    # the same ids again (other ts), a late one into the middle, and new ones
    again = [t(f"o{j}", now + 40_500 + j) for j in range(0, 400, 9)]
    new = [t("mid", now + 20_000 + 5), *(t(f"n{j}", now + 40_100 + j) for j in range(20))]
    [r] = engine.apply_records([x.record for x in [*again, *new]], now=now + 41_000)
    assert r.status is ApplyStatus.REBUILT and r.rebuilt == 0 and "id index" in r.reason
    assert (r.applied, r.duplicates) == (len(new), len(again))
    assert redis_client.type(k.ids) == b"hash"
    assert all(len(e.split()) == 6 for e in redis_client.lrange(k.trades, 0, -1))
    count, held = id_index(redis_client, A)
    assert count == redis_client.llen(k.trades) == 421
    assert sorted(held) == listed_keys(redis_client)
    assert_matches_reference(reader, [*old, *new], now + 41_000, s.windows, [A])
    [r] = engine.apply_records([t("after", now + 42_000).record], now=now + 42_000)
    assert r.status is ApplyStatus.OK and r.applied == 1
    assert_matches_reference(
        reader, [*old, *new, t("after", now + 42_000)], now + 45_000, s.windows, [A]
    )
