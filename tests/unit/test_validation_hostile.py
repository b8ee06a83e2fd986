"""Hostile input (issue 10): validation returns trades or raises InvalidTrade, nothing else.

Property tests over arbitrary bytes and over adversarial JSON (absurd
exponents, 10^5-digit numbers, deep nesting, giant arrays, NUL and lone
surrogates, duplicate keys), plus the exact verdicts for the cases the issue
names.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeagg.contract.validation import (
    MAX_ELEMENTS,
    MAX_REASONS,
    Parsed,
    decode,
    parse,
    validate,
)
from tradeagg.errors import InvalidTrade

NOW = 1_700_000_000_000
SKEW = 5_000
TOKEN = "So11111111111111111111111111111111111111112"
FIELDS = ("id", "token", "side", "amount", "quote", "price", "ts", "seq", "trader", "block")
GOOD = {
    "id": '"sig-1"',
    "token": json.dumps(TOKEN),
    "side": '"buy"',
    "amount": '"12.5"',
    "quote": '"1.5"',
    "price": '"0.0001"',
    "ts": str(NOW - 1000),
    "seq": "0",
    "trader": json.dumps(TOKEN),
    "block": "7",
}
HOSTILE_LITERALS = [
    "1e1000000",
    "-1e1000000",
    "1E+99999999999",
    "1e-1000000",
    "1E-99999999999",
    "9" * 100_000,
    "-" + "9" * 100_000,
    "0." + "0" * 100_000 + "1",
    "1." + "1" * 63,
    "1" * 64,
    "1" * 65,
    "1e9999",
    "1e-9999",
    "1e10000",
    "0e1000000",
    "-0",
    "0",
    "1.5",
    "true",
    "null",
    "[]",
    "{}",
    "[" * 400 + "]" * 400,
    '"NaN"',
    '"sNaN"',
    '"-Infinity"',
    '"1e99999"',
    '"1e9999"',
    '"' + "9" * 100_000 + '"',
    '"\\u0000"',
    '"\\ud800"',
    '"\\udfff\\ud800x"',
    '"buy\\u0000"',
    json.dumps("So1" + "\u0000" * 40),
]


def _check(value: bytes | str) -> None:
    """The property itself: Parsed, or InvalidTrade; anything else fails the test."""
    try:
        out = parse(value, NOW, SKEW)
    except InvalidTrade as exc:
        assert exc.reason.startswith("message:"), exc.reason
        return
    assert isinstance(out, Parsed)
    assert out.elements == len(out.trades) + out.rejected
    assert len(out.reasons) == min(out.rejected, MAX_REASONS) == len(out.samples)


literal = st.sampled_from(HOSTILE_LITERALS)
small_literal = st.sampled_from([x for x in HOSTILE_LITERALS if len(x) < 1_000])
scalar = st.one_of(
    small_literal,
    st.sampled_from(list(GOOD.values())),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=12).map(json.dumps),
    st.text(max_size=12).map(lambda t: json.dumps(t, ensure_ascii=False)),
)
key = st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)).map(json.dumps)


def _obj(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"


def _trade(**over: str) -> str:
    """A trade's JSON text, fields given as JSON literals."""
    return _obj([(json.dumps(f), over.get(f, GOOD[f])) for f in FIELDS])


json_text = st.recursive(
    scalar,
    lambda kids: st.one_of(
        st.lists(kids, max_size=6).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.lists(st.tuples(key, kids), max_size=8).map(_obj),  # duplicate keys happen
    ),
    max_leaves=12,
)


@st.composite
def trade_shaped(draw: st.DrawFn) -> str:
    """A full trade whose fields may be hostile, repeated, reordered or missing."""
    pairs = [(json.dumps(f), GOOD[f]) for f in FIELDS]
    for i in draw(st.lists(st.integers(0, len(FIELDS) - 1), max_size=4)):
        pairs[i] = (pairs[i][0], draw(st.one_of(literal, json_text)))  # 10^5 digits too
    pairs += draw(st.lists(st.tuples(key, st.one_of(literal, scalar)), max_size=3))
    if draw(st.booleans()):
        pairs = draw(st.permutations(pairs))
    return _obj(pairs[: draw(st.integers(len(pairs) - 2, len(pairs)))])


message = st.one_of(
    json_text,
    trade_shaped(),
    st.lists(st.one_of(trade_shaped(), json_text), max_size=6).map(
        lambda xs: "[" + ",".join(xs) + "]"
    ),
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes(value: bytes) -> None:
    _check(value)


@settings(SETTINGS, max_examples=100)
@given(message, st.booleans())
def test_adversarial_json(text: str, as_str: bool) -> None:
    if as_str:
        _check(text)  # may hold lone surrogates: str input is not encoded first
    else:
        _check(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.sampled_from(FIELDS), literal)
def test_each_field_with_each_hostile_literal(name: str, lit: str) -> None:
    value = _trade(**{name: lit})
    _check(value)
    _check(f"[{value},{_trade()}]".encode())


@pytest.mark.parametrize(
    "lit",
    ["1e1000000", "-1e1000000", "1E+99999999999", "9" * 100_000, "1e-1000000"],
    ids=["1e1000000", "-1e1000000", "1E+99999999999", "100k-digits", "1e-1000000"],
)
def test_issue_10_numbers_fail_only_their_element(lit: str) -> None:
    value = "[" + _trade(id='"sig-ok"') + "," + _trade(quote=lit) + "]"
    out = parse(value.encode(), NOW, SKEW)
    assert [t.id for t in out.trades] == ["sig-ok"]
    assert out.rejected == 1 and out.reasons[0][0] == 1
    assert out.reasons[0][1].startswith("quote:"), out.reasons


def test_python_values_never_raise_anything_else() -> None:
    base = json.loads(_trade())
    for v in (Decimal("1e1000000"), Decimal("1e-1000000"), Decimal("sNaN"), 10**100_000):
        with pytest.raises(InvalidTrade, match="quote"):
            validate({**base, "quote": v}, NOW, SKEW)


def test_giant_arrays_stop_at_the_cap() -> None:
    zeros = ("[" + ",".join(["0"] * 500_000) + "]").encode()
    with pytest.raises(InvalidTrade, match=f"more than {MAX_ELEMENTS} elements"):
        parse(zeros, NOW, SKEW)
    at_cap = parse(("[" + ",".join(["0"] * MAX_ELEMENTS) + "]").encode(), NOW, SKEW)
    assert (at_cap.elements, at_cap.rejected, len(at_cap.reasons)) == (
        MAX_ELEMENTS,
        MAX_ELEMENTS,
        MAX_REASONS,
    )
    assert at_cap.reasons[0] == (0, "element: a int, not an object")


@pytest.mark.parametrize("depth", [999, 1_000, 5_000, 500_000])
def test_deep_nesting_is_a_message_error(depth: int) -> None:
    with pytest.raises(InvalidTrade, match="not JSON"):
        decode(b"[" * depth + b"]" * (depth - 1))
    _check(b"[" * depth + b"]" * depth)
    _check(b'{"a":' * depth + b"1" + b"}" * depth)


def test_syntax_error_after_good_elements_keeps_no_trade() -> None:
    good = _trade()
    with pytest.raises(InvalidTrade, match="not JSON"):
        parse(f"[{good},{good},".encode(), NOW, SKEW)
    with pytest.raises(InvalidTrade, match="not JSON"):
        parse(f"[{good}] x".encode(), NOW, SKEW)
    assert [t.id for t in parse(f" [ {good} , {good} ] \n".encode(), NOW, SKEW).trades] == [
        "sig-1",
        "sig-1",
    ]
