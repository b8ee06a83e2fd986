"""The bench's check of bucketed windows knows which trades a worker may have
dropped as late (tradeagg/devtools/bench.py: late_unsure)."""

from __future__ import annotations

from tradeagg.contract.trade import Trade
from tradeagg.devtools.bench import late_unsure

A = "So11111111111111111111111111111111111111112"
B = "0x" + "ab" * 20
H = 3_600_000


def trade(i: int, token: str, ts: int) -> Trade:
    return Trade(id=f"t{i}", token=token, side="buy", quote_nano=1, price="1", ts=ts)


def test_a_newer_trade_within_one_read_makes_the_older_unsure() -> None:
    # A's trade at 0 and its trade 2 h later are 3 stream positions apart: one read
    # may hand both to one call, which drops the older as late (older than 1 h)
    xs = [trade(0, A, 0), trade(1, B, 0), trade(2, B, 10), trade(3, A, 2 * H)]
    assert late_unsure(xs, H, per_read=3) == {A}
    # further apart than one read: the older entered before the newer came
    assert late_unsure(xs, H, per_read=2) == set()
    # within the hour (a trade exactly 1 h older is late): late for no call
    ys = [trade(0, A, 1), trade(1, A, H)]
    assert late_unsure(ys, H, per_read=10) == set()


def test_the_newest_ahead_counts_not_the_next() -> None:
    # the next trade is close in time, the one after it is 2 h later: reach 2 sees it
    xs = [trade(0, A, 0), trade(1, A, 30 * 60_000), trade(2, A, 2 * H)]
    assert late_unsure(xs, H, per_read=2) == {A}
    # reach 1: 0 -> 30 min, 30 min -> 2 h (1.5 h): the second trade is unsure itself
    assert late_unsure(xs, H, per_read=1) == {A}
    ys = [trade(0, A, 0), trade(1, A, 50 * 60_000), trade(2, A, 100 * 60_000)]
    assert late_unsure(ys, H, per_read=1) == set()
    assert late_unsure(ys, H, per_read=2) == {A}


def test_only_trades_behind_in_the_stream_count() -> None:
    # the newer trade came first: the older one is surely late (the check leaves it
    # out of the reference), not unsure
    assert late_unsure([trade(0, A, 2 * H), trade(1, A, 0)], H, per_read=5) == set()
