"""``Backlog``: the one definition of what the workers still owe a shard stream."""

from __future__ import annotations

import redis

from tradeagg.contract import keys
from tradeagg.store.stream import Backlog


def group(**fields) -> dict:
    return {"name": keys.STREAM_GROUP.encode(), **fields}


def test_lag_plus_pending_is_unacked():
    b = Backlog.from_replies(9, [group(lag=2, pending=3)])
    assert (b.length, b.lag, b.pending, b.unacked, b.group) == (9, 2, 3, 5, True)


def test_without_a_group_everything_is_lag():
    missing = redis.ResponseError("ERR no such key")
    assert Backlog.from_replies(4, missing) == Backlog(4, 4, 0, False)
    assert Backlog.from_replies(4, [{"name": b"other", "lag": 0, "pending": 0}]).unacked == 4
    assert Backlog.from_replies(missing, missing) == Backlog(0, 0, 0, False)


def test_unknown_lag_is_bounded_by_length_minus_pending():
    b = Backlog.from_replies(10, [group(lag=None, pending=4)])
    assert (b.lag, b.unacked) == (6, 10)
