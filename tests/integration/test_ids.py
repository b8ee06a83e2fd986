"""CONTRACT §1: the same `id` seen twice is one trade, whatever its ts or seq."""

from __future__ import annotations

import redis

from tests.support.checks import assert_matches_reference
from tests.support.idindex import id_index, id_key
from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
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
