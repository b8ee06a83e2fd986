"""`tradeagg windows list|retire` end to end, through the CLI, against a real redis-server."""

from __future__ import annotations

import json
import time

from tests.support import reference
from tests.support.checks import assert_matches_reference
from tests.support.cli import assert_one_line_failure, cli
from tests.support.idindex import id_index, id_key
from tests.support.observe_procs import env_for
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.engine.windowset import Retirer
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"
B = "0x" + "ab" * 20
C = "0x" + "cd" * 20
MIN = 60_000
OLD = Settings(windows=parse_windows("1m,5m,1h"))
NEW = Settings(windows=parse_windows("1m,5m,15m"))


def history(t0: int) -> list[Trade]:
    """Trades over the last 50 minutes of A and B; C trades only with the old release."""
    return [
        Trade(
            id=f"h{i}",
            token=(A, B, C)[i % 3],
            side="buy" if i % 2 else "sell",
            quote_nano=1_000_000_000 + i,
            price=str(1 + i % 7),
            ts=t0 - 50 * MIN + i * 10_000,
        )
        for i in range(300)
    ]


def labels_of(client, token: str) -> set[str]:
    return {k.decode() for k in client.hkeys(keys.TokenKeys(token).indices)}


def listed(env) -> dict[str, dict]:
    done = cli(env, "windows", "list", "--json")
    assert done.returncode == 0, done.stderr
    return {d["label"]: d for d in map(json.loads, done.stdout.splitlines())}


def test_list_then_retire_through_the_cli(redis_server, redis_client) -> None:
    t0 = int(time.time() * 1000)
    trades = history(t0)
    Engine(redis_client, OLD).apply_records([t.record for t in trades], now=t0)
    Engine(redis_client, NEW).advance([A, B], now=t0)  # the new release met A and B
    env = env_for(redis_server.url, TRADEAGG_WINDOWS="1m,5m,15m")

    before = listed(env)
    assert {k: (v["tokens"], v["configured"]) for k, v in before.items()} == {
        "1m": (3, True), "5m": (3, True), "15m": (2, True), "1h": (3, False),
    }  # fmt: skip
    assert before["1h"]["ms"] == 3_600_000 and before["15m"]["partial"] == 0

    refused = cli(env, "windows", "retire", "5m")
    assert_one_line_failure(refused, "5m is configured here", code=2)
    assert_one_line_failure(cli(env, "windows", "retire", "7x"), "'7x'", code=2)
    assert labels_of(redis_client, A) == {"1m", "5m", "15m", "1h"}

    # a live worker still configured with 1h would add it back: refused
    beat = {"kind": "worker", "name": "w-old", "windows": ["1m", "5m", "1h"]}
    redis_client.set(keys.heartbeat("worker", "w-old"), json.dumps(beat), px=60_000)
    assert_one_line_failure(cli(env, "windows", "retire", "1h"), "w-old (1h)", code=2)
    redis_client.delete(keys.heartbeat("worker", "w-old"))

    lengths = {t: redis_client.llen(keys.TokenKeys(t).trades) for t in (A, B, C)}
    done = cli(env, "windows", "retire", "1h", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["tokens"], summary["retired"], summary["kept"]) == (3, 3, 0)
    assert summary["trimmed"] > 0
    for token in (A, B, C):
        k = keys.TokenKeys(token)
        assert "1h" not in labels_of(redis_client, token)
        assert not [f for f in redis_client.hkeys(k.aggregates) if f.startswith(b"1h:")]
        # the list keeps the longest window left: 15m for A and B, 5m for C (it never met
        # the new release); the id index follows it
        longest = 15 * MIN if token != C else 5 * MIN
        kept = [t for t in trades if t.token == token and t.ts > t0 - longest]
        assert redis_client.llen(k.trades) == len(kept) < lengths[token]
        held, ids = id_index(redis_client, token)
        assert held == len(kept) and sorted(ids) == sorted(id_key(t.id) for t in kept)
    assert summary["trimmed"] == sum(lengths.values()) - sum(
        redis_client.llen(keys.TokenKeys(t).trades) for t in (A, B, C)
    )
    assert set(listed(env)) == {"1m", "5m", "15m"}

    # the tokens stay exact for the new release, with no rebuild; C gains 15m now, from a
    # list kept for 5m: partial until 15 minutes after that list's start
    results = Engine(redis_client, NEW).advance([A, B, C], now=t0 + 1_000)
    assert [(r.rebuilt, r.reason) for r in results] == [(-1, "")] * 3
    assert_matches_reference(Reader(redis_client, NEW), trades, t0 + 1_000, NEW.windows, [A, B])
    assert_matches_reference(Reader(redis_client, OLD), trades, t0 + 1_000, OLD.windows[:2], [C])
    c15 = Reader(redis_client, NEW).read(C, t0 + 1_000).windows["15m"]
    assert c15.complete_from == t0 - 5 * MIN + 15 * MIN

    # retiring again finds nothing to do
    again = json.loads(cli(env, "windows", "retire", "1h", "--json").stdout)
    assert (again["retired"], again["trimmed"]) == (0, 0)


def test_retire_trims_in_bounded_calls_and_keeps_a_token_with_only_retired_windows(
    redis_client,
) -> None:
    t0 = 1_700_000_000_000
    trades = history(t0)
    Engine(redis_client, OLD).apply_records([t.record for t in trades if t.token != C], now=t0)
    Engine(redis_client, Settings(windows=parse_windows("1h"))).apply_records(
        [t.record for t in trades if t.token == C], now=t0
    )
    before = {t: redis_client.llen(keys.TokenKeys(t).trades) for t in (A, C)}
    run = Retirer(redis_client, trim_per_call=7).retire(["1h"])
    assert (run.tokens, run.retired, run.kept) == (3, 2, [C])
    assert labels_of(redis_client, C) == {"1h"}
    assert redis_client.llen(keys.TokenKeys(C).trades) == before[C]  # left as it was
    five = [t for t in trades if t.token == A and t.ts > t0 - 5 * MIN]
    assert redis_client.llen(keys.TokenKeys(A).trades) == len(five) < before[A]
    fewer = Settings(windows=parse_windows("1m,5m"))
    want = reference.windows(five, t0, fewer.windows)
    assert want["5m"]["buys"] + want["5m"]["sells"] == len(five)
    assert_matches_reference(Reader(redis_client, fewer), trades, t0, fewer.windows, [A, B])


def test_a_bucketed_window_is_listed_and_retired_through_the_cli(redis_server, redis_client):
    """A bucketed window (CONTRACT §2c) has no index: `windows list` finds it by its
    fields and says so; `windows retire` deletes its fields, and the windows left
    stay exact."""
    old = Settings(windows=parse_windows("1m,5m,1h,6h"))
    new = Settings(windows=parse_windows("1m,5m,1h"))
    t0 = int(time.time() * 1000)
    trades = history(t0)
    Engine(redis_client, old).apply_records([t.record for t in trades], now=t0)
    env = env_for(redis_server.url, TRADEAGG_WINDOWS="1m,5m,1h")

    before = listed(env)
    assert {k: (v["kind"], v["tokens"], v["configured"]) for k, v in before.items()} == {
        "1m": ("exact", 3, True), "5m": ("exact", 3, True), "1h": ("exact", 3, True),
        "6h": ("bucketed", 3, False),
    }  # fmt: skip
    table = cli(env, "windows", "list")
    assert table.returncode == 0 and "bucketed" in table.stdout, table.stderr

    done = cli(env, "windows", "retire", "6h", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["tokens"], summary["retired"], summary["kept"]) == (3, 3, 0)
    for token in (A, B, C):
        fields = redis_client.hkeys(keys.TokenKeys(token).aggregates)
        assert not [f for f in fields if f.startswith(b"6h:")]
        assert labels_of(redis_client, token) == {"1m", "5m", "1h"}
    assert set(listed(env)) == {"1m", "5m", "1h"}

    # the release without 6h goes on from there, exact, with no rebuild
    results = Engine(redis_client, new).advance([A, B, C], now=t0 + 1_000)
    assert [(r.rebuilt, r.reason) for r in results] == [(-1, "")] * 3
    assert_matches_reference(Reader(redis_client, new), trades, t0 + 1_000, new.windows, [A, B, C])
    again = json.loads(cli(env, "windows", "retire", "6h", "--json").stdout)
    assert again["retired"] == 0
