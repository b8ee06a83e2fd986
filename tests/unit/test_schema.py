"""Trade validation (CONTRACT §1): good trades and hostile inputs against literal expected results."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from tradeagg.contract.validation import (
    MAX_MESSAGE_BYTES,
    decode,
    parse_message,
    validate,
)
from tradeagg.devtools.synthetic import SyntheticFeed, to_message
from tradeagg.errors import InvalidTrade

NOW = 1_700_000_000_000
SKEW = 5_000
TOKEN = "So11111111111111111111111111111111111111112"
TRADER = "0x" + "ab" * 20


def good(**over: object) -> dict:
    base = {
        "id": "5sig:0",
        "token": TOKEN,
        "side": "buy",
        "amount": "1000",
        "quote": "1.5",
        "price": "0.0015",
        "ts": NOW - 1000,
        "seq": 3,
        "trader": TRADER,
        "block": 123,
    }
    base.update(over)
    return base


def without(key: str) -> dict:
    d = good()
    del d[key]
    return d


def check(obj: object) -> object:
    return validate(obj, NOW, SKEW)


def test_a_good_trade_becomes_a_trade():
    t = check(good())
    assert (t.id, t.token, t.side, t.ts, t.seq, t.block) == (
        "5sig:0",
        TOKEN,
        "buy",
        NOW - 1000,
        3,
        123,
    )
    assert t.quote_nano == 1_500_000_000
    assert t.price == "0.0015"
    assert t.amount == "1000"
    assert t.trader == TRADER


@pytest.mark.parametrize(
    ("quote", "nano"),
    [
        ("0.0000000015", 2),  # half-even: 1.5 -> 2
        ("0.0000000025", 2),  # half-even: 2.5 -> 2
        ("0.00000000250001", 3),
        (1, 1_000_000_000),
        (Decimal("0.1"), 100_000_000),
        (0.1, 100_000_000),
        ("1e3", 1_000_000_000_000),
        ("999999999.999999999", 999_999_999_999_999_999),
        ("1000000000", 1_000_000_000_000_000_000),
    ],
)
def test_quote_rounds_half_even_to_nine_decimals(quote, nano):
    assert check(good(quote=quote)).quote_nano == nano


def test_price_and_amount_are_plain_normalized_strings():
    t = check(good(price="1.2300E+2", amount="000042.500"))
    assert (t.price, t.amount) == ("123", "42.5")
    assert check(good(price=Decimal("1E-12"))).price == "0.000000000001"


def test_optional_fields_default():
    t = check(without("seq"))
    assert t.seq == 0
    assert check(without("block")).block is None
    assert check(good(seq=None, block=None)).seq == 0


def test_unknown_fields_are_ignored():
    assert check(good(extra={"x": [1, 2]}, venue="raydium")).id == "5sig:0"


def test_ts_within_skew_is_fine_beyond_is_invalid():
    assert check(good(ts=NOW + SKEW)).ts == NOW + SKEW
    with pytest.raises(InvalidTrade, match="future"):
        check(good(ts=NOW + SKEW + 1))


HOSTILE = [
    ("missing id", without("id"), "id: missing"),
    ("missing quote", without("quote"), "quote: missing"),
    ("empty id", good(id=""), "id"),
    ("id with space", good(id="a b"), "id"),
    ("id with newline", good(id="abc\n"), "id"),
    ("id too long", good(id="x" * 129), "id"),
    ("id non-ascii", good(id="sig\u00e9"), "id"),
    ("id a number", good(id=12), "id"),
    ("token key injection brace", good(token=TOKEN[:-1] + "}"), "token"),
    ("token key injection space", good(token=TOKEN[:20] + " " + TOKEN[21:]), "token"),
    ("token trailing newline", good(token=TOKEN + "\n"), "token"),
    ("token with 0 (not base58)", good(token="0" * 40), "token"),
    ("token too short", good(token="So111"), "token"),
    ("token too long", good(token=TOKEN + "11"), "token"),
    ("token 0x wrong length", good(token="0x" + "a" * 39), "token"),
    ("token huge", good(token="1" * 5_000_000), "token"),
    ("token control char", good(token=TOKEN[:-1] + "\x00"), "token"),
    ("token a list", good(token=[TOKEN]), "token"),
    ("trader bad", good(trader="not a wallet"), "trader"),
    ("side upper", good(side="BUY"), "side"),
    ("side other", good(side="short"), "side"),
    ("side a list", good(side=["buy"]), "side"),
    ("quote zero", good(quote=0), "quote"),
    ("quote negative", good(quote="-1"), "quote"),
    ("quote NaN string", good(quote="NaN"), "quote"),
    ("quote Infinity string", good(quote="Infinity"), "quote"),
    ("quote nan float", good(quote=float("nan")), "quote"),
    ("quote inf float", good(quote=float("inf")), "quote"),
    ("quote bool", good(quote=True), "quote"),
    ("quote too big", good(quote="1000000000.000000001"), "quote"),
    ("quote 1e400", good(quote=Decimal("1e400")), "quote"),
    ("quote 1e-400", good(quote=Decimal("1e-400")), "quote"),
    ("quote with spaces", good(quote=" 1"), "quote"),
    ("quote hex", good(quote="0x10"), "quote"),
    ("quote too many digits", good(quote="1." + "1" * 50), "quote"),
    ("quote huge int", good(quote=10**100), "quote"),
    ("quote null", good(quote=None), "quote"),
    ("quote object", good(quote={"v": 1}), "quote"),
    ("price too big", good(price="1e16"), "price"),
    ("price zero", good(price="0.000"), "price"),
    ("amount too big", good(amount="1e41"), "amount"),
    ("ts negative", good(ts=-1), "ts"),
    ("ts float", good(ts=float(NOW)), "ts"),
    ("ts string", good(ts=str(NOW)), "ts"),
    ("ts bool", good(ts=True), "ts"),
    ("ts far future", good(ts=NOW + 10**9), "ts"),
    ("seq negative", good(seq=-1), "seq"),
    ("seq bool", good(seq=False), "seq"),
    ("seq over 2^53", good(seq=2**53), "seq"),
    ("block string", good(block="12"), "block"),
    ("block negative", good(block=-5), "block"),
    ("not an object", [good()], "element"),
    ("a string", "trade", "element"),
]


@pytest.mark.parametrize(
    ("obj", "field"), [(o, f) for _, o, f in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_hostile_elements_are_invalid_with_a_reason(obj, field):
    with pytest.raises(InvalidTrade) as info:
        check(obj)
    assert info.value.reason.startswith(field.split(":")[0]), info.value.reason


ACCEPTED = [
    # (what the message says, what the Trade holds: quote_nano, price, amount, ts, seq, block)
    ("quote string 1", good(quote="1"), (1_000_000_000, "0.0015", "1000", NOW - 1000, 3, 123)),
    ("quote integer 2", good(quote=2), (2_000_000_000, "0.0015", "1000", NOW - 1000, 3, 123)),
    ("quote float 0.5", good(quote=0.5), (500_000_000, "0.0015", "1000", NOW - 1000, 3, 123)),
    ("quote exponent", good(quote="3.25e-3"), (3_250_000, "0.0015", "1000", NOW - 1000, 3, 123)),
    ("quote E+2", good(quote="1E+2"), (100_000_000_000, "0.0015", "1000", NOW - 1000, 3, 123)),
    (
        "quote trailing 0s",
        good(quote=Decimal("7.000")),
        (7_000_000_000, "0.0015", "1000", NOW - 1000, 3, 123),
    ),
    (
        "price exponent",
        good(price="2.50E-7"),
        (1_500_000_000, "0.00000025", "1000", NOW - 1000, 3, 123),
    ),
    (
        "amount integer",
        good(amount=10**30),
        (1_500_000_000, "0.0015", "1" + "0" * 30, NOW - 1000, 3, 123),
    ),
    ("seq null", good(seq=None), (1_500_000_000, "0.0015", "1000", NOW - 1000, 0, 123)),
    ("no seq", without("seq"), (1_500_000_000, "0.0015", "1000", NOW - 1000, 0, 123)),
    ("no block", without("block"), (1_500_000_000, "0.0015", "1000", NOW - 1000, 3, None)),
    ("block 0", good(block=0), (1_500_000_000, "0.0015", "1000", NOW - 1000, 3, 0)),
    ("ts 0", good(ts=0), (1_500_000_000, "0.0015", "1000", 0, 3, 123)),
    (
        "seq 2^53-1",
        good(seq=2**53 - 1),
        (1_500_000_000, "0.0015", "1000", NOW - 1000, 2**53 - 1, 123),
    ),
]


@pytest.mark.parametrize(
    ("obj", "want"), [(o, w) for _, o, w in ACCEPTED], ids=[n for n, _, _ in ACCEPTED]
)
def test_accepted_variants_give_these_trades(obj, want):
    t = check(obj)
    assert (t.quote_nano, t.price, t.amount, t.ts, t.seq, t.block) == want
    assert (t.id, t.token, t.side, t.trader) == ("5sig:0", TOKEN, "buy", TRADER)


def test_synthetic_messages_validate_back_to_their_trades():
    """Every message the tools produce (``to_message``) is valid and means exactly its trade."""
    trades = SyntheticFeed(tokens=50, seed=7).trades(300, NOW - 60_000, 50)
    got = [check(to_message(t)) for t in trades]
    # amounts come back normalized ("1.50" -> "1.5"): same number, fewer digits
    assert [replace(g, amount="") for g in got] == [replace(t, amount="") for t in trades]
    assert [Decimal(g.amount) for g in got] == [Decimal(t.amount) for t in trades]
    assert all(not g.amount.endswith("0") or "." not in g.amount for g in got)


# --- whole messages ----------------------------------------------------------------


def test_message_object_or_array():
    assert len(decode(json.dumps(good()).encode())) == 1
    assert len(decode(json.dumps([good(), good(id="b")]).encode())) == 2
    assert decode(b"[]") == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'"a string"', "not an object or array"),
        (b"42", "not an object or array"),
        (b'{"quote": NaN}', "not JSON"),
        (b'{"quote": Infinity}', "not JSON"),
        (b'{"quote": -Infinity}', "not JSON"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_bad_messages(value, reason):
    with pytest.raises(InvalidTrade, match=reason):
        decode(value)


def test_a_5_mb_message_is_invalid_without_parsing():
    big = json.dumps([good(id=f"x{i}") for i in range(20_000)]).encode()
    assert len(big) > 5 * MAX_MESSAGE_BYTES - 1_000_000
    with pytest.raises(InvalidTrade, match="over 1048576"):
        decode(big)


def test_just_under_1_mib_is_accepted():
    value = json.dumps(good(pad="x" * (MAX_MESSAGE_BYTES - 400))).encode()
    assert len(value) <= MAX_MESSAGE_BYTES
    assert parse_message(value, NOW, SKEW)[0][0].id == "5sig:0"


def test_1e400_stays_an_element_error():
    value = (
        b'[{"id":"a","token":"%s","side":"buy","amount":1,"quote":1e400,"price":1,"ts":1,"trader":"%s"}]'
        % (
            TOKEN.encode(),
            TOKEN.encode(),
        )
    )
    good_trades, bad = parse_message(value, NOW, SKEW)
    assert good_trades == [] and bad[0][2].startswith("quote")


def test_huge_integer_literal_is_an_element_error():
    digits = "9" * 5000
    elem = json.dumps(good()).replace(f'"ts": {NOW - 1000}', f'"ts": {digits}')
    assert digits in elem
    value = elem.encode()
    good_trades, bad = parse_message(value, NOW, SKEW)
    assert good_trades == [] and bad[0][2].startswith("ts")


def test_array_with_mixed_elements_keeps_the_valid_ones():
    elements = [
        good(id="ok1"),
        good(id="bad one"),
        7,
        good(id="ok2", ts=NOW + 10**7),
        good(id="ok3"),
    ]
    trades, bad = parse_message(json.dumps(elements).encode(), NOW, SKEW)
    assert [t.id for t in trades] == ["ok1", "ok3"]
    assert [(i, r.split(":")[0]) for i, _, r in bad] == [(1, "id"), (2, "element"), (3, "ts")]


def test_trailing_zeros_do_not_count_as_digits_and_raw_amounts_fit() -> None:
    now = 1_700_000_000_000
    t = validate(good(price="1." + "0" * 45, amount="1" + "0" * 31, ts=now), now, 5000)
    assert (t.price, t.amount) == ("1", "1" + "0" * 31)
