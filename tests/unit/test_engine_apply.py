"""The engine's pure steps, no Redis: grouping records by token, and building Lua calls."""

from __future__ import annotations

import redis

from tradeagg.engine.apply import MAX_ENTRIES_PER_CALL, Engine, group_records
from tradeagg.settings import Settings, parse_windows

A = "So11111111111111111111111111111111111111112"
B = "0x" + "ab" * 20


def test_grouping_sorts_by_ts_seq_id_and_drops_exact_repeats():
    records = [
        f"{A} 20 0 b 5 1.5 z",
        f"{B} 10 0 s 7 2 q",
        f"{A} 10 1 s 3 1.5 y",
        f"{A} 10 1 s 3 1.5 x",
        f"{A} 10 0 b 1 1.5 w",
        f"{A} 20 0 b 5 1.5 z",  # the same record twice: kept once
    ]
    groups, bad = group_records(records)
    assert groups == {
        A: ["10 0 b 1 1.5 w", "10 1 s 3 1.5 x", "10 1 s 3 1.5 y", "20 0 b 5 1.5 z"],
        B: ["10 0 s 7 2 q"],
    }
    assert bad == []
    assert list(groups) == [A, B]  # tokens in order of first appearance


def test_grouping_ts_and_seq_compare_as_numbers_ids_as_text():
    groups, _ = group_records([f"{A} 100 0 b 1 1 a", f"{A} 99 10 b 1 1 b", f"{A} 99 9 b 1 1 B"])
    assert groups[A] == ["99 9 b 1 1 B", "99 10 b 1 1 b", "100 0 b 1 1 a"]


def test_grouping_sets_malformed_records_apart_and_keeps_the_rest():
    records = [
        "no-space-at-all",
        f"{A} 30 0 b 1 1 c",
        f"{A} notanumber 0 b 1 1 d",
        f"{A} 10 0 b",  # too few fields
        f"{A} 20 0 b 1 1 e",
        f"{B} 5 x s 1 1 f",
    ]
    groups, bad = group_records(records)
    # a token none of whose records is usable gets no group (and so no Lua call)
    assert groups == {A: ["20 0 b 1 1 e", "30 0 b 1 1 c"]}
    assert sorted(bad) == sorted(
        ["no-space-at-all", f"{A} notanumber 0 b 1 1 d", f"{A} 10 0 b", f"{B} 5 x s 1 1 f"]
    )


def test_grouping_keeps_a_digest_suffix_in_the_entry():
    digest = "0123456789abcdef0123"
    groups, bad = group_records([f"{A} 1 0 b 1 1 id {digest}"])
    assert groups == {A: [f"1 0 b 1 1 id {digest}"]} and bad == []


def _engine(per_call: int) -> Engine:
    client = redis.Redis(host="127.0.0.1", port=1)  # never connects: calls() is pure
    return Engine(client, Settings(windows=parse_windows("1m"), tokens_per_call=per_call))


def _tokens(n: int) -> list[str]:
    digits = "23456789"
    return [A[:-2] + digits[i // 8] + digits[i % 8] for i in range(n)]


def test_calls_hold_at_most_tokens_per_call_in_order():
    tokens = _tokens(7)
    groups = {t: [f"{i} 0 b 1 1 x"] for i, t in enumerate(tokens)}
    calls = _engine(3).calls(groups)
    assert [[t for t, _ in call] for call in calls] == [tokens[0:3], tokens[3:6], tokens[6:7]]
    assert calls[0][0] == (tokens[0], ["0 0 b 1 1 x"])


def test_calls_split_before_the_entry_budget_and_keep_a_big_token_whole():
    a, b, c, d = _tokens(4)
    big = MAX_ENTRIES_PER_CALL - 10
    groups = {a: ["e"] * big, b: ["e"] * 20, c: ["e"] * (MAX_ENTRIES_PER_CALL + 5), d: []}
    calls = _engine(64).calls(groups)
    assert [[(t, len(e)) for t, e in call] for call in calls] == [
        [(a, big)],  # b would pass the budget: new call
        [(b, 20)],
        [(c, MAX_ENTRIES_PER_CALL + 5)],  # alone over the budget: still one call, never split
        [(d, 0)],
    ]


def test_no_tokens_no_calls():
    assert _engine(8).calls({}) == []
