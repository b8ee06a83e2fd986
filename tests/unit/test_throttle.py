"""logs.Throttle: a burst per window, the rest counted and handed out once."""

from __future__ import annotations

from tradeagg.logs import Throttle


def test_burst_then_counts_then_summary() -> None:
    now = [100.0]
    t = Throttle(3, 10.0, clock=lambda: now[0])
    assert [t.admit() for _ in range(5)] == [0, 0, 0, None, None]
    assert t.overdue() == 0  # window still open
    now[0] += 10.0
    assert t.overdue() == 2 and t.overdue() == 0  # handed out once
    assert [t.admit() for _ in range(4)] == [0, 0, 0, None]
    now[0] += 11.0
    assert t.admit() == 1  # the next window's first line carries the count
    assert t.overdue() == 0
