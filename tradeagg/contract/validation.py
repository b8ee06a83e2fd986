"""Validation of trade messages (CONTRACT §1) into ``Trade`` values.

One implementation: ``validate(obj, now_ms, max_skew_ms)``, hand-written checks,
the bridge's hot path (~3 µs a trade, see ``benchmarks/bench_schema.py``; a
marshmallow schema of the same rules took ~25 µs). ``tests/unit/test_schema.py``
holds it to literal expected results on good and hostile trades.

Bounds chosen here (the contract says "finite, > 0"; these make "finite" safe
for the Lua engine and for memory):

* a number has at most ``MAX_DIGITS`` (40) significant digits and, as a string,
  at most ``MAX_NUMBER_TEXT`` (64) characters; magnitude at least 1e-30;
* ``quote <= 1e9`` (keeps every window's volume exact: see MAX_QUOTE), rounded half-even to
  9 decimals (``quote_nano``); a quote below 5e-10 rounds to 0 and still counts
  as a trade of zero volume (CONTRACT §2: finer digits may be rounded);
* ``price <= 1e15``, ``amount <= 1e40``; significant digits counted without trailing zeros;
* ``ts`` an integer ``0 <= ts <= now + max_skew_ms``; ``seq`` an integer in
  ``[0, 2**53)`` (exact in Lua), default 0; ``block`` an integer in
  ``[0, 2**63)`` or absent; ``null`` counts as absent for ``seq`` and ``block``;
* booleans are never numbers; NaN/Infinity are not JSON here;
* a message value is at most ``MAX_MESSAGE_BYTES`` (1 MiB) of UTF-8 JSON: one
  object, or an array of at most ``MAX_ELEMENTS`` (10,000) objects (an empty
  array is a valid message of no trade). No valid message can need more: a
  trade takes at least ~140 bytes of JSON, so 10,000 exceed 1 MiB.

Hostile input (issue 10): whatever the bytes, ``parse``, ``decode`` and
``validate`` raise nothing but ``InvalidTrade``, and cost about what the same
size of valid trades costs. Number literals longer than ``MAX_NUMBER_TEXT`` or
with an exponent of more than 4 digits are rejected by the JSON decoder itself
(as a ``RejectedNumber`` value, so only their element fails) before any
``Decimal`` exists; magnitudes are checked with ``adjusted()`` before any
arithmetic; arrays are decoded element by element and stop at the cap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from tradeagg.contract.address import ADDRESS_RE
from tradeagg.contract.trade import Trade
from tradeagg.errors import InvalidTrade

MAX_MESSAGE_BYTES = 1 << 20
MAX_DIGITS = 40
MAX_NUMBER_TEXT = 64
MIN_ADJUSTED = -30  # smallest accepted magnitude: 1e-30
MAX_ADJUSTED = 40  # below 1e41: above every bound (amount <= 1e40), checked before arithmetic
MAX_INT_BITS = 200  # a Python int beyond this is out of every range (1e40 < 2**133)
MAX_EXPONENT_DIGITS = 4  # 1e9999 at most, as in a decimal string
MAX_ELEMENTS = 10_000  # elements per message; more is invalid as a whole
MAX_REASONS = 10  # reasons kept per message (the count covers them all)
MAX_QUOTE = Decimal(10**9)  # inclusive: with TRADEAGG_MAX_TOKEN_TRADES <= 9e6, every
# window's volume stays below 9e15 < 2**53 whole units, exact in Lua's doubles
MAX_PRICE = Decimal(10**15)
MAX_AMOUNT = Decimal(10**40)  # raw units of an 18-decimal token fit; amount is not stored
MAX_SEQ = 2**53 - 1
MAX_BLOCK = 2**63 - 1

ID_RE = re.compile(r"[!-~]{1,128}")
NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
SIDES = ("buy", "sell")
_CTX = Context(prec=100, rounding=ROUND_HALF_EVEN)
_NANO = Decimal(1).scaleb(-9)


class RejectedNumber:
    """A JSON number literal refused while decoding (too long, absurd exponent).

    It stands in the decoded element, so only the element holding it fails,
    with ``reason``; no ``Decimal`` or ``int`` is ever built from the literal.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __str__(self) -> str:
        return f"<{self.reason}>"


def _too_long(text: str) -> RejectedNumber | None:
    if len(text) > MAX_NUMBER_TEXT:
        return RejectedNumber(f"number of {len(text)} characters, over {MAX_NUMBER_TEXT}")
    return None


def _parse_int(text: str) -> int | Decimal | RejectedNumber:
    """JSON integers: huge ones stay Decimal so one element fails, not the whole message."""
    bad = _too_long(text)
    if bad is not None:
        return bad
    return int(text) if len(text) <= 40 else Decimal(text)


def _parse_float(text: str) -> Decimal | RejectedNumber:
    bad = _too_long(text)
    if bad is not None:
        return bad
    _mantissa, e, exponent = text.lower().partition("e")
    if e and len(exponent.lstrip("+-").lstrip("0")) > MAX_EXPONENT_DIGITS:
        return RejectedNumber(f"exponent over {MAX_EXPONENT_DIGITS} digits")
    return Decimal(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


_DECODER = json.JSONDecoder(
    parse_float=_parse_float, parse_int=_parse_int, parse_constant=_no_constant
)
_WS = re.compile(r"[ \t\n\r]*")


def _text_of(value: bytes | str | None) -> str:
    if value is None:
        raise InvalidTrade("message: empty value")
    if not isinstance(value, str | bytes | bytearray | memoryview):
        raise InvalidTrade(f"message: a {type(value).__name__}, not bytes")
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidTrade(f"message: {len(value)} bytes, over {MAX_MESSAGE_BYTES}")
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidTrade("message: not UTF-8") from None


def _not_json(detail: str) -> InvalidTrade:
    return InvalidTrade(f"message: not JSON ({detail[:80]})")


def _scan(text: str, i: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, i)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise _not_json(str(exc) or type(exc).__name__) from None


def iter_elements(value: bytes | str | None) -> Iterator[Any]:
    """The elements of a message value, decoded one at a time (one object -> itself).

    Raises ``InvalidTrade`` for the whole message, possibly after yielding some
    elements: too big, not UTF-8, not JSON, neither an object nor an array, or
    more than ``MAX_ELEMENTS`` elements (found without decoding the rest).
    """
    text = _text_of(value)
    ws = _WS.match
    i = ws(text, 0).end()
    if text[i : i + 1] != "[":
        doc, i = _scan(text, i)
        if ws(text, i).end() != len(text):
            raise _not_json(f"extra data at char {i}")
        if type(doc) is not dict:
            raise InvalidTrade(f"message: a JSON {type(doc).__name__}, not an object or array")
        yield doc
        return
    i = ws(text, i + 1).end()
    if text[i : i + 1] == "]":
        i += 1
    else:
        n = 0
        while True:
            if n == MAX_ELEMENTS:
                raise InvalidTrade(f"message: more than {MAX_ELEMENTS} elements")
            element, i = _scan(text, i)
            n += 1
            yield element
            i = ws(text, i).end()
            c = text[i : i + 1]
            if c == "]":
                i += 1
                break
            if c != ",":
                raise _not_json(f"expecting ',' or ']' at char {i}")
            i = ws(text, i + 1).end()
    if ws(text, i).end() != len(text):
        raise _not_json(f"extra data at char {i}")


def decode(value: bytes | str | None) -> list[Any]:
    """A message value -> its elements (one object -> a list of one).

    Raises ``InvalidTrade`` for the whole message (see ``iter_elements``).
    """
    return list(iter_elements(value))


def number(value: Any, name: str) -> Decimal:
    """A finite positive number (JSON number or decimal string) within the digit bounds.

    Magnitude is checked with ``adjusted()`` before any arithmetic, and any
    ``ArithmeticError`` left (decimal's Overflow, InvalidOperation...) is an
    ``InvalidTrade``: no number, however absurd, raises anything else.
    """
    try:
        d = _decimal(value, name)
        if not d.is_finite():
            raise InvalidTrade(f"{name}: not finite")
        if d <= 0:
            raise InvalidTrade(f"{name}: must be > 0")
        if d.adjusted() > MAX_ADJUSTED:
            raise InvalidTrade(f"{name}: not below 1e{MAX_ADJUSTED + 1}")
        if d.adjusted() < MIN_ADJUSTED:
            raise InvalidTrade(f"{name}: below 1e{MIN_ADJUSTED}")
        if len(d.normalize(_CTX).as_tuple().digits) > MAX_DIGITS:
            raise InvalidTrade(f"{name}: more than {MAX_DIGITS} digits")
    except ArithmeticError as exc:
        raise InvalidTrade(f"{name}: {type(exc).__name__} in decimal arithmetic") from None
    return d


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidTrade(f"{name}: a boolean, not a number")
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise InvalidTrade(f"{name}: not below 1e{MAX_ADJUSTED + 1}")
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_TEXT or not NUMBER_RE.fullmatch(value):
            raise InvalidTrade(f"{name}: {value[:40]!r} is not a plain decimal")
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidTrade(f"{name}: not finite")
        return Decimal(repr(value))
    if isinstance(value, RejectedNumber):
        raise InvalidTrade(f"{name}: {value.reason}")
    raise InvalidTrade(f"{name}: a {type(value).__name__}, not a number")


def plain(d: Decimal) -> str:
    """``d`` as a plain decimal string without exponent or trailing zeros."""
    return format(d.normalize(_CTX), "f")


def quote_nano(d: Decimal) -> int:
    """Quote in units of 1e-9, rounded half-even."""
    if d > MAX_QUOTE:
        raise InvalidTrade(f"quote: must be <= {MAX_QUOTE}")
    try:
        return int(d.quantize(_NANO, context=_CTX).scaleb(9, _CTX))
    except ArithmeticError as exc:
        raise InvalidTrade(f"quote: {type(exc).__name__} in decimal arithmetic") from None


def _price(value: Any) -> str:
    d = number(value, "price")
    if d > MAX_PRICE:
        raise InvalidTrade(f"price: must be <= {MAX_PRICE}")
    return plain(d)


def _amount(value: Any) -> str:
    d = number(value, "amount")
    if d > MAX_AMOUNT:
        raise InvalidTrade(f"amount: must be <= {MAX_AMOUNT}")
    return plain(d)


def _integer(value: Any, name: str, hi: int) -> int:
    if type(value) is RejectedNumber:
        raise InvalidTrade(f"{name}: {value.reason}")
    if type(value) is not int:
        raise InvalidTrade(f"{name}: a {type(value).__name__}, not an integer")
    if not 0 <= value <= hi:
        raise InvalidTrade(f"{name}: out of range 0..{hi}")
    return value


def _text(value: Any, name: str, pattern: re.Pattern[str], what: str) -> str:
    if type(value) is not str:
        raise InvalidTrade(f"{name}: a {type(value).__name__}, not a string")
    if not pattern.fullmatch(value):
        raise InvalidTrade(f"{name}: {value[:60]!r} is not {what}")
    return value


def validate(obj: Any, now_ms: int, max_skew_ms: int) -> Trade:
    """One decoded element -> a Trade, or ``InvalidTrade`` with the first broken rule."""
    if type(obj) is not dict:
        raise InvalidTrade(f"element: a {type(obj).__name__}, not an object")
    try:
        ident = _text(obj["id"], "id", ID_RE, "1-128 printable ASCII without whitespace")
        token = _text(obj["token"], "token", ADDRESS_RE, "a base58 or 0x address")
        side = obj["side"]
        if type(side) is not str:
            raise InvalidTrade(f"side: a {type(side).__name__}, not a string")
        if side not in SIDES:
            raise InvalidTrade(f"side: {side[:20]!r} is not buy or sell")
        amount = _amount(obj["amount"])
        qn = quote_nano(number(obj["quote"], "quote"))
        price = _price(obj["price"])
        ts = _integer(obj["ts"], "ts", MAX_SEQ)
        trader = _text(obj["trader"], "trader", ADDRESS_RE, "a base58 or 0x address")
    except KeyError as exc:
        raise InvalidTrade(f"{exc.args[0]}: missing") from None
    if ts > now_ms + max_skew_ms:
        raise InvalidTrade(f"ts: {ts - now_ms} ms in the future, over {max_skew_ms}")
    seq = obj.get("seq")
    seq = 0 if seq is None else _integer(seq, "seq", MAX_SEQ)
    block = obj.get("block")
    if block is not None:
        block = _integer(block, "block", MAX_BLOCK)
    return Trade(ident, token, side, qn, price, ts, seq, amount, trader, block)


@dataclass
class Parsed:
    """What one message held: its valid trades and a bounded account of the rest."""

    trades: list[Trade] = field(default_factory=list)
    elements: int = 0  # elements decoded
    rejected: int = 0  # invalid elements, all counted
    reasons: list[tuple[int, str]] = field(default_factory=list)  # first MAX_REASONS
    samples: list[Any] = field(default_factory=list)  # their elements, for an excerpt


def parse(value: bytes | str | None, now_ms: int, max_skew_ms: int) -> Parsed:
    """A message value -> ``Parsed``; ``InvalidTrade`` if the message fails as a whole.

    A whole-message failure (size, encoding, JSON syntax anywhere, not an
    object or array, over ``MAX_ELEMENTS``) keeps no trade from it: the
    message is one unit for the producer, its bytes are kept in the dead letter.
    """
    out = Parsed()
    for element in iter_elements(value):
        out.elements += 1
        try:
            out.trades.append(validate(element, now_ms, max_skew_ms))
        except InvalidTrade as exc:
            out.rejected += 1
            if len(out.reasons) < MAX_REASONS:
                out.reasons.append((out.elements - 1, exc.reason))
                out.samples.append(element)
    return out


def parse_message(
    value: bytes | str | None, now_ms: int, max_skew_ms: int
) -> tuple[list[Trade], list[tuple[int, Any, str]]]:
    """A message value -> (valid trades, [(element index, element, reason)]).

    A message-level failure (size, encoding, JSON, element cap) raises ``InvalidTrade``.
    """
    good: list[Trade] = []
    bad: list[tuple[int, Any, str]] = []
    for i, element in enumerate(iter_elements(value)):
        try:
            good.append(validate(element, now_ms, max_skew_ms))
        except InvalidTrade as exc:
            bad.append((i, element, exc.reason))
    return good, bad
