"""`top` ranks exactly like a brute-force ranking over the same trades."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from tests.support import reference
from tradeagg.clock import now_ms
from tradeagg.contract.trade import Trade
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine import rank
from tradeagg.engine.apply import Engine
from tradeagg.engine.rank import RANK_BY, Ranker
from tradeagg.engine.read import Reader
from tradeagg.errors import BadQuery, UsageError
from tradeagg.settings import Settings, parse_windows

START = 1_700_000_000_000


def settings() -> Settings:
    # a 1 s bucket divides every window: the previous windows are kept (volume_change_pct)
    return Settings(windows=parse_windows("5s,30s,2m"), shards=4, tokens_per_call=8, bucket_ms=1_000)


def load(client, s: Settings, seed: int, n: int = 1200) -> list[Trade]:
    """Synthetic trades (Zipf over 40 tokens), applied in arrival batches, a few twice."""
    feed = SyntheticFeed(tokens=40, seed=seed, traders=50)
    trades = feed.trades(n, START, rate=40)
    engine = Engine(client, s)
    for i in range(0, len(trades), 97):
        batch = trades[i : i + 97]
        engine.apply_records([t.record for t in batch], now=batch[-1].ts)
        if i % 3 == 0:  # redelivery: duplicates change nothing
            engine.apply_records([t.record for t in batch], now=batch[-1].ts)
    return trades


def brute_force(trades: list[Trade], at: int, s: Settings, label: str, by: str) -> list:
    w = next(w for w in s.windows if w.label == label)
    per_token: dict[str, list[Trade]] = {}
    for t in reference.distinct(trades):
        per_token.setdefault(t.token, []).append(t)
    scored = []
    for token, ts in per_token.items():
        m = reference.window(ts, at, w)
        m.update(reference.previous(ts, at, w, s.bucket_ms, m["volume"]))
        n = m["buys"] + m["sells"]
        value = n if by == "trades" else m[by]
        if n == 0 or value is None:  # volume_change_pct without a previous volume: unranked
            continue
        scored.append((value, token))
    scored.sort(key=lambda s: s[1])
    scored.sort(key=lambda s: s[0], reverse=True)
    return scored


@pytest.mark.parametrize("seed", [1, 2])
def test_top_equals_brute_force(redis_client, seed):
    s = settings()
    trades = load(redis_client, s, seed)
    ranker = Ranker(redis_client, s)
    end = max(t.ts for t in trades)
    for at in (end, end + 2_500, end + 29_000, end + 200_000):
        for w in s.windows:
            for by in RANK_BY:
                got = ranker.top(w.label, by, limit=None, at=at)
                want = brute_force(trades, at, s, w.label, by)
                assert got.at == at
                assert [r.token for r in got.rows] == [t for _, t in want], (at, w.label, by)
                for r, (value, _) in zip(got.rows, want, strict=True):
                    assert r.rank == got.rows.index(r) + 1
                    mine = rank.metric(r.window(w.label), by)
                    if by in ("price_change_pct", "volume_change_pct"):
                        assert mine == pytest.approx(value, rel=1e-12, abs=1e-12)
                    else:
                        assert mine == value


def test_limit_and_batches(redis_client):
    s = settings()
    trades = load(redis_client, s, seed=3, n=600)
    at = max(t.ts for t in trades) + 1_000
    whole = Ranker(redis_client, s).top("2m", "volume", limit=None, at=at)
    reader = Reader(redis_client, s, batch=7)  # many pipelined round trips
    top5 = Ranker(redis_client, s, reader).top("2m", "volume", limit=5, at=at)
    assert [r.token for r in top5.rows] == [r.token for r in whole.rows[:5]]
    assert top5.candidates == len({t.token for t in trades})
    assert all(isinstance(r.window("2m").volume, Decimal) for r in top5.rows)


def test_catches_up_when_a_token_is_newer_than_now(redis_client):
    """Wall clock, no --at: a token applied "after" our now moves the common instant up."""
    s = settings()
    trades = load(redis_client, s, seed=4, n=300)
    future = now_ms() + 60_000  # a minute beyond the test's wall clock
    late = [
        dataclasses.replace(t, ts=future - 1_000 + i, id=f"f{i}") for i, t in enumerate(trades[:3])
    ]
    Engine(redis_client, s).apply_records([t.record for t in late], now=future)
    got = Ranker(redis_client, s).top("2m", "volume", limit=None)
    assert got.at >= future
    assert {v.at for v in got.views} == {got.at}  # one common instant for every token
    want = brute_force(trades + late, got.at, s, "2m", "volume")
    assert [(r.window("2m").volume, r.token) for r in got.rows] == want
    assert got.candidates == len({t.token for t in trades})
    with pytest.raises(UsageError, match="earlier than last_update"):
        Ranker(redis_client, s).top("2m", "volume", at=future - 1)


@pytest.mark.parametrize("by", ["price_change_pct", "buys"])
def test_min_volume_leaves_out_tokens_that_traded_less(redis_client, by):
    """The ranking among the tokens with at least that volume, ranks renumbered."""
    s = settings()
    trades = load(redis_client, s, seed=6, n=500)
    at = max(t.ts for t in trades) + 1_000
    ranker = Ranker(redis_client, s)
    volumes = dict((t, v) for v, t in brute_force(trades, at, s, "30s", "volume"))
    cuts = sorted(set(volumes.values()))
    assert len(cuts) > 4
    for least in (Decimal(0), cuts[1], cuts[len(cuts) // 2], cuts[-1], cuts[-1] + 1):
        got = ranker.top("30s", by, limit=None, at=at, min_volume=least)
        want = [t for _, t in brute_force(trades, at, s, "30s", by) if volumes[t] >= least]
        assert [r.token for r in got.rows] == want, least
        assert [r.rank for r in got.rows] == list(range(1, len(want) + 1))
        assert got.min_volume == least
    assert ranker.top("30s", by, limit=None, at=at, min_volume=cuts[-1] + 1).rows == []


def test_bad_options(redis_client):
    ranker = Ranker(redis_client, settings())
    with pytest.raises(UsageError, match="not configured"):
        ranker.top("7m")
    with pytest.raises(BadQuery, match="^by 'hype' is not one of volume, "):
        ranker.top("5s", by="hype")


def _cli(redis_server, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REDIS_URL=redis_server.url, TRADEAGG_WINDOWS="5s,30s,2m")
    env["TRADEAGG_SHARDS"] = "4"
    return subprocess.run(
        [sys.executable, "-m", "tradeagg", "top", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_json_table_and_exit_codes(redis_server, redis_client):
    s = settings()
    trades = load(redis_client, s, seed=5, n=400)
    at = max(t.ts for t in trades)
    out = _cli(redis_server, "--window", "30s", "--by", "trades", "--json", "--at", str(at))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    want = brute_force(trades, at, s, "30s", "trades")[:20]
    assert [r["token"] for r in rows] == [t for _, t in want]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["buys"] + r["sells"] == v for r, (v, _) in zip(rows, want, strict=True))
    assert {r["window"] for r in rows} == {"30s"} and {r["at"] for r in rows} == {at}

    table = _cli(redis_server, "--window", "2m", "--limit", "3", "--at", str(at))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("top 3 of ") and "by volume in 2m" in lines[0]
    assert len(lines) == 5  # title, header, 3 rows
    assert lines[2].split()[1] == brute_force(trades, at, s, "2m", "volume")[0][1]

    bad = _cli(redis_server, "--window", "7m")
    assert bad.returncode == 2 and "not configured" in bad.stderr
    past = _cli(redis_server, "--at", str(at - 1))
    assert past.returncode == 2 and "earlier than last_update" in past.stderr
    assert _cli(redis_server, "--limit", "0").returncode == 2

    volumes = brute_force(trades, at, s, "2m", "volume")
    least = volumes[len(volumes) // 2][0]
    out = _cli(
        redis_server,
        "--window",
        "2m",
        "--by",
        "price_change_pct",
        "--json",
        "--at",
        str(at),
        "--min-volume",
        str(least),
        "--limit",
        "100",
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    kept = {t for v, t in volumes if v >= least}
    want = [t for _, t in brute_force(trades, at, s, "2m", "price_change_pct") if t in kept]
    assert [r["token"] for r in rows] == want and len(want) < len(volumes)
    table = _cli(redis_server, "--window", "2m", "--at", str(at), "--min-volume", str(least))
    assert table.returncode == 0 and f"with volume >= {least} by volume" in table.stdout
    for bad in ("abc", "-1", "NaN", "inf", "1e99"):
        out = _cli(redis_server, "--min-volume", bad)
        assert out.returncode == 2 and "--min-volume" in out.stderr, (bad, out.stderr)
        assert "Traceback" not in out.stderr
