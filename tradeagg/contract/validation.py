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
  object, or an array of objects (an empty array is a valid message of no trade).
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from tradeagg.contract.address import ADDRESS_RE
from tradeagg.contract.trade import Trade
from tradeagg.errors import InvalidTrade

MAX_MESSAGE_BYTES = 1 << 20
MAX_DIGITS = 40
MAX_NUMBER_TEXT = 64
MIN_ADJUSTED = -30  # smallest accepted magnitude: 1e-30
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


def _int_or_big(text: str) -> int | Decimal:
    """JSON integers: huge ones stay Decimal so one element fails, not the whole message."""
    return int(text) if len(text) <= 40 else Decimal(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def decode(value: bytes | str | None) -> list[Any]:
    """A message value -> its elements (one object -> a list of one).

    Raises ``InvalidTrade`` for the whole message: too big, not UTF-8, not
    JSON, or neither an object nor an array.
    """
    if value is None:
        raise InvalidTrade("message: empty value")
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidTrade(f"message: {len(value)} bytes, over {MAX_MESSAGE_BYTES}")
    try:
        text = value.decode("utf-8") if isinstance(value, bytes | bytearray) else value
        doc = json.loads(
            text, parse_float=Decimal, parse_int=_int_or_big, parse_constant=_no_constant
        )
    except UnicodeDecodeError:
        raise InvalidTrade("message: not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidTrade(f"message: not JSON ({str(exc)[:80]})") from None
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        return doc
    raise InvalidTrade(f"message: a JSON {type(doc).__name__}, not an object or array")


def number(value: Any, name: str) -> Decimal:
    """A finite positive number (JSON number or decimal string) within the digit bounds."""
    if isinstance(value, bool):
        raise InvalidTrade(f"{name}: a boolean, not a number")
    if isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, Decimal):
        d = value
    elif isinstance(value, str):
        if len(value) > MAX_NUMBER_TEXT or not NUMBER_RE.fullmatch(value):
            raise InvalidTrade(f"{name}: {value[:40]!r} is not a plain decimal")
        d = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidTrade(f"{name}: not finite")
        d = Decimal(repr(value))
    else:
        raise InvalidTrade(f"{name}: a {type(value).__name__}, not a number")
    if not d.is_finite():
        raise InvalidTrade(f"{name}: not finite")
    if d <= 0:
        raise InvalidTrade(f"{name}: must be > 0")
    if len(d.normalize(_CTX).as_tuple().digits) > MAX_DIGITS:
        raise InvalidTrade(f"{name}: more than {MAX_DIGITS} digits")
    if d.adjusted() < MIN_ADJUSTED:
        raise InvalidTrade(f"{name}: below 1e{MIN_ADJUSTED}")
    return d


def plain(d: Decimal) -> str:
    """``d`` as a plain decimal string without exponent or trailing zeros."""
    return format(d.normalize(_CTX), "f")


def quote_nano(d: Decimal) -> int:
    """Quote in units of 1e-9, rounded half-even."""
    if d > MAX_QUOTE:
        raise InvalidTrade(f"quote: must be <= {MAX_QUOTE}")
    return int(d.quantize(_NANO, context=_CTX).scaleb(9, _CTX))


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
        if side not in SIDES or type(side) is not str:
            raise InvalidTrade(f"side: {str(side)[:20]!r} is not buy or sell")
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


def parse_message(
    value: bytes | str | None, now_ms: int, max_skew_ms: int
) -> tuple[list[Trade], list[tuple[int, Any, str]]]:
    """A message value -> (valid trades, [(element index, element, reason)]).

    A message-level failure (size, encoding, JSON) raises ``InvalidTrade``.
    """
    good: list[Trade] = []
    bad: list[tuple[int, Any, str]] = []
    for i, element in enumerate(decode(value)):
        try:
            good.append(validate(element, now_ms, max_skew_ms))
        except InvalidTrade as exc:
            bad.append((i, element, exc.reason))
    return good, bad
