"""The hub's bounded ranking pass ranks exactly like ``Ranker.top``, reading fewer tokens."""

from __future__ import annotations

import dataclasses

import pytest

from tests.integration.test_top import load, settings
from tradeagg.api.ranking import BOUNDED_BY, BoundedRanker
from tradeagg.engine.apply import Engine
from tradeagg.engine.rank import Ranker

F = "F" * 44  # a token with a trade ahead of its last apply


def rows(ranking) -> list[tuple[str, object]]:
    return [(r.token, r.window(ranking.window).volume) for r in ranking.rows]


@pytest.mark.parametrize("seed", [1, 2])
def test_bounded_rows_equal_the_full_ranking(redis_client, seed):
    s = settings()
    trades = load(redis_client, s, seed)
    ranker = Ranker(redis_client, s)
    bounded = BoundedRanker(Ranker(redis_client, s))
    end = max(t.ts for t in trades)
    candidates = len({t.token for t in trades})
    for at in (end, end + 2_500, end + 29_000, end + 200_000):
        for w in s.windows:
            for by in BOUNDED_BY:
                for limit in (1, 5):
                    want = ranker.top(w.label, by, limit, at)
                    got = bounded.top(w.label, by, limit, at)
                    assert got.at == at and got.candidates == candidates
                    assert [r.token for r in got.rows] == [r.token for r in want.rows], (
                        at, w.label, by, limit,
                    )
                    assert rows(got) == rows(want)
    reads = bounded.reads
    bounded.top("2m", "volume", 5, end + 1_000)
    assert bounded.reads - reads < candidates  # it did not read every token


def test_a_trade_ahead_of_the_last_apply_is_no_bound(redis_client):
    """A trade ahead of its token's last_update enters the windows later: the stored
    aggregates are then no bound, and the token is read however small they are."""
    s = settings()
    trades = load(redis_client, s, seed=5, n=600)
    end = max(t.ts for t in trades)
    small = dataclasses.replace(trades[0], token=F, id="f-now", ts=end, quote_nano=1)
    big = dataclasses.replace(small, id="f-ahead", ts=end + 3_000, quote_nano=10**18)
    Engine(redis_client, s).apply_records([small.record, big.record], now=end)
    at = end + 4_000
    want = Ranker(redis_client, s).top("30s", "volume", 3, at)
    got = BoundedRanker(Ranker(redis_client, s)).top("30s", "volume", 3, at)
    assert want.rows[0].token == F
    assert rows(got) == rows(want)
