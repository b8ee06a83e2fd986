"""The deep check's memo (issue 11): a quiet token is read in full once, not on every pass.

Work is counted in list elements the check reads (``touched``, lib/core.lua), not time.
"""

from __future__ import annotations

import threading

from tradeagg.contract.keys import TokenKeys
from tradeagg.engine.apply import Engine
from tradeagg.engine.integrity import Integrity
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.runtime.janitor import Janitor
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"
S = Settings(windows=parse_windows("1m,10m"), shards=1, stale_after=0.0)
N = 300


def records(t0: int, n: int, start: int = 0) -> list[str]:
    return [
        f"{A} {t0 + 1_000 * i} 0 {'bs'[i % 2]} {1_000_000_000 + i} 1.{i} r{start + i}"
        for i in range(n)
    ]


def test_an_unchanged_token_is_checked_once_and_a_change_checks_it_again(redis_client) -> None:
    t0 = 1_700_000_000_000
    engine = Engine(redis_client, S)
    engine.apply_records(records(t0, N), now=t0 + N * 1_000)
    integrity = Integrity(redis_client, S)

    first = integrity.check([A])
    assert (first.checked, first.unchanged, first.corrupt) == (1, 0, {})
    assert first.touched >= N  # the whole list read
    again = integrity.check([A])
    assert (again.checked, again.unchanged) == (0, 1)
    assert again.touched <= 2  # the cheap checks only (the list's tail)

    # sliding the windows (the janitor's advance) changes nothing the check covers
    [r] = engine.advance([A], now=t0 + N * 1_000 + 30_000)
    assert r.applied == 0 and r.last_update == t0 + N * 1_000 + 30_000
    slid = integrity.check([A])
    assert (slid.checked, slid.unchanged) == (0, 1) and slid.touched <= 2

    # a trade added invalidates the memo: the next check reads the list again
    engine.apply_records(records(t0 + N * 1_000 + 31_000, 1, start=N), now=t0 + N * 1_000 + 32_000)
    assert not redis_client.exists(TokenKeys(A).checked)
    after = integrity.check([A])
    assert after.checked == 1 and after.touched >= redis_client.llen(TokenKeys(A).trades)

    # damage found by the cheap checks is reported even while the memo stands
    assert integrity.check([A]).unchanged == 1
    redis_client.hset(TokenKeys(A).aggregates, "1m:buys", 10**6)
    broken = integrity.check([A])
    assert list(broken.corrupt) == [A]


def test_a_window_added_or_a_rebuild_invalidates_the_memo(redis_client) -> None:
    t0 = 1_700_000_000_000
    engine = Engine(redis_client, S)
    engine.apply_records(records(t0, 50), now=t0 + 50_000)
    integrity = Integrity(redis_client, S)
    assert integrity.check([A]).checked == 1
    wider = Settings(windows=parse_windows("1m,10m,30m"), shards=1)
    [r] = Engine(redis_client, wider).advance([A], now=t0 + 51_000)
    assert r.applied == 0 and r.rebuilt == -1
    assert not redis_client.exists(TokenKeys(A).checked)  # it carries a window never checked
    assert integrity.check([A]).checked == 1
    integrity.invalidate([A])
    assert not redis_client.exists(TokenKeys(A).checked)
    [r] = engine.advance([A], now=t0 + 52_000)
    assert r.rebuilt >= 0
    assert integrity.check([A]).checked == 1


def test_the_janitor_counts_the_checks_it_skipped(redis_client) -> None:
    t0 = 1_700_000_000_000
    engine = Engine(redis_client, S)
    engine.apply_records(records(t0, 50), now=t0 + 50_000)
    metrics, stop = MemoryMetrics(), threading.Event()
    janitor = Janitor(redis_client, engine, S, metrics, stop.wait, stop.is_set, "t")
    runs = [janitor.run_once(now=t0 + 50_000 + k * 10_000) for k in range(1, 4)]
    assert [(r.checked, r.unchanged, r.refreshed) for r in runs] == [
        (1, 0, 1),
        (0, 1, 1),
        (0, 1, 1),
    ]
    totals = metrics.totals()
    assert (totals["janitor.checked"], totals["janitor.checks_skipped"]) == (1, 2)
