"""The stream entry codec: the one owner of how trades travel through a shard stream.

A shard stream entry (``tradeagg:{sN}:stream``) packs many trades::

    v = "3"                        format version ("2": decimal entries, "1": and no traders)
    t = "<record>\\n<record>..."   one record per trade
    src = "..."                    optional: where the trades came from

A record is ``<token> <list entry> <digest>``. A list entry, exactly what
``token:{A}:trades`` holds, is ``<ts> <seq> <B|S><trader> <quote_nano> <price> <id>``,
its three integers in base 36 (lowercase), the capital side letter marking
that compact form: every byte of an element is paid for per kept trade, and
base 36 takes 8 characters for a 13-digit ts, 7 for a quote of 1-78 SOL in
nano units. Records of formats 1 and 2 and elements of earlier releases hold
the decimal form, ``<ts> <seq> <b|s><trader> <quote_nano> <price> <id>``:
both forms are read everywhere (``sort_key``, ``lua/lib/entry.lua``).
``<trader>`` is the trader's digest (8 base64url characters of SHA-1 of the
wallet: 48 bits, the screener's distinct traders) glued to the side letter,
or nothing in records of format 1 and elements of earlier releases (a trade
of no known trader: it counts everywhere but in makers, buyers and sellers).
The digest (20 hex digits of SHA-1 of the id, computed here so that Redis
need not) gives the id's key in the token's id index ``tradeagg:{A}:ids``
(``lua/lib/ids.lua``); ``apply_trades.lua`` takes entries with or without it
and never stores it (every byte of an element is paid for per kept trade).
Every field is free of spaces (the contract forbids whitespace in ids and
addresses), so splitting on a space is unambiguous. ``quote_nano`` is the
quote in units of 1e-9, an integer; ``price`` a plain decimal, as given.

``encode`` is the bridge's side, ``decode`` and ``group`` the worker's: a
whole entry that cannot be used raises ``MalformedEntry``; a bad record in a
good entry is reported on its own so the entry's other trades still apply.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from tradeagg.contract.address import ADDRESS_RE
from tradeagg.errors import MalformedEntry

if TYPE_CHECKING:
    from tradeagg.contract.trade import Trade

FORMAT_VERSION = "3"
FORMATS = ("1", "2", "3")  # what decode reads: 2 is 3 in decimal, 1 is 2 without traders
DIGEST = 20
TRADER_DIGEST = 8  # base64url characters: 48 bits of SHA-1
RAW_KEEP = 500  # characters of a bad record or entry quoted in its error
TOKEN_RE = ADDRESS_RE  # a record's token: the one address pattern

SortKey = tuple[int, int, str]


def id_digest(ident: str) -> str:
    """The id's digest a record carries: 20 hex digits of SHA-1 (the id index keeps 64 bits)."""
    return hashlib.sha1(ident.encode("ascii", "replace")).hexdigest()[:DIGEST]


def trader_digest(trader: str) -> str:
    """The trader's digest a list entry carries: 8 base64url characters of SHA-1
    (48 bits: two of 5,000 traders of a token share one with probability ~4e-8);
    "" for no trader."""
    if not trader:
        return ""
    raw = hashlib.sha1(trader.encode("ascii", "replace")).digest()[:6]
    return base64.urlsafe_b64encode(raw).decode("ascii")


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_B36_PAIRS = [a + b for a in _B36 for b in _B36]  # two digits at a time (the bridge's hot path)
_B36_SHORT = [p.lstrip("0") or "0" for p in _B36_PAIRS]  # 0 .. 36^2 - 1, no leading zero


def base36(n: int) -> str:
    """A non-negative integer in base 36, lowercase (Lua reads it with ``tonumber(x, 36)``)."""
    if n < 1296:
        return _B36_SHORT[n]
    hi, lo = divmod(n, 1296)
    if hi < 1296:
        return _B36_SHORT[hi] + _B36_PAIRS[lo]
    hi, mid = divmod(hi, 1296)  # a ts of this century: 8 digits
    out = _B36_PAIRS[mid] + _B36_PAIRS[lo]
    while hi >= 1296:
        hi, r = divmod(hi, 1296)
        out = _B36_PAIRS[r] + out
    return _B36_SHORT[hi] + out


def _base_of(side: str) -> int:
    """A list entry's side field -> the base of its integers (36: compact, 10:
    decimal); ValueError unless it is a side letter, then nothing or a trader digest."""
    if len(side) in (1, 1 + TRADER_DIGEST):
        letter = side[0]
        if letter in "BS":
            return 36
        if letter in "bs":
            return 10
    raise ValueError("not a list entry")


def list_entry(trade: Trade) -> str:
    """The list entry of ``trade`` (what ``token:{A}:trades`` holds), compact."""
    side = ("B" if trade.side == "buy" else "S") + trader_digest(trade.trader)
    return (f"{base36(trade.ts)} {base36(trade.seq)} {side} {base36(trade.quote_nano)} "
            f"{trade.price} {trade.id}")


def record(trade: Trade) -> str:
    """The stream record of ``trade``: its token, its list entry and its id's digest."""
    return f"{trade.token} {list_entry(trade)} {id_digest(trade.id)}"


def encode(trades: Iterable[Trade], src: str = "") -> dict[str, str]:
    """The fields of one stream entry holding ``trades``."""
    return encode_records((record(t) for t in trades), src)


def encode_records(records: Iterable[str], src: str = "") -> dict[str, str]:
    """The fields of one stream entry holding already encoded ``records``."""
    fields = {"v": FORMAT_VERSION, "t": "\n".join(records)}
    if src:
        fields["src"] = src
    return fields


def sort_key(entry: str) -> SortKey:
    """The (ts, seq, id) order of a list entry; ValueError if it is not one."""
    parts = entry.split(" ")
    if len(parts) not in (6, 7):
        raise ValueError("not a list entry")
    base = _base_of(parts[2])
    return int(parts[0], base), int(parts[1], base), parts[5]


@dataclass
class Decoded:
    """One entry's records, and its records that could not be used (reason, raw)."""

    records: list[tuple[str, str, SortKey]] = field(default_factory=list)  # token, entry, key
    bad: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("ascii") if isinstance(value, bytes | bytearray) else str(value)


def payload(fields: Mapping[Any, Any]) -> str:
    """The ``t`` text of an entry; ``MalformedEntry`` if its version or encoding is wrong."""
    get = fields.get
    try:
        version = _text(get(b"v", get("v")))
        body = _text(get(b"t", get("t")))
    except UnicodeDecodeError:
        raise MalformedEntry("entry is not ASCII", repr(dict(fields))[:RAW_KEEP]) from None
    if version not in FORMATS or body is None:
        raise MalformedEntry(f"unknown entry format v={version!r}", repr(dict(fields))[:RAW_KEEP])
    return body


def replayable(fields: Mapping[Any, Any]) -> str:
    """What a dead letter keeps of an entry: its records (replayable), or an excerpt."""
    try:
        return payload(fields)
    except MalformedEntry as exc:
        return exc.raw


def decode(fields: Mapping[Any, Any]) -> Decoded:
    """An entry's fields (bytes or text keys) -> its records.

    Raises ``MalformedEntry`` when the entry as a whole is unusable; an entry
    with no fields (deleted by XTRIM/XDEL while pending) decodes to nothing.
    """
    out = Decoded()
    if not fields:
        return out
    records, tokens, match = out.records, out.tokens, TOKEN_RE.match
    for line in payload(fields).split("\n"):  # the worker's hot loop: sort_key inlined
        token, _sep, entry = line.partition(" ")
        if not match(token):
            out.bad.append(("bad token in record", line[:RAW_KEEP]))
            continue
        parts = entry.split(" ")
        try:
            if len(parts) not in (6, 7):
                raise ValueError("not a list entry")
            base = _base_of(parts[2])
            records.append((token, entry, (int(parts[0], base), int(parts[1], base), parts[5])))
        except ValueError:
            out.bad.append(("unparsable record", line[:RAW_KEEP]))
            continue
        tokens.add(token)
    return out


@dataclass
class Batch:
    """A decoded batch: records per entry, and what could not be used."""

    ids: list[str] = field(default_factory=list)
    records: list[tuple[str, str, SortKey]] = field(default_factory=list)
    tokens_of: dict[str, set[str]] = field(default_factory=dict)  # entry id -> tokens
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (entry id, reason, raw)


def decode_batch(entries: list[tuple[Any, Mapping[Any, Any]]]) -> Batch:
    """Split entries into records (the codec's job); what it cannot read is rejected."""
    batch = Batch()
    for raw_id, fields in entries:
        entry_id = _text(raw_id) or ""
        batch.ids.append(entry_id)
        try:
            decoded = decode(fields)
        except MalformedEntry as exc:
            batch.rejected.append((entry_id, exc.reason, exc.raw))
            batch.tokens_of[entry_id] = set()
            continue
        batch.rejected.extend((entry_id, reason, raw) for reason, raw in decoded.bad)
        batch.records.extend(decoded.records)
        batch.tokens_of[entry_id] = decoded.tokens
    return batch


def group(records: Iterable[tuple[str, str, SortKey]]) -> dict[str, list[str]]:
    """Decoded records -> {token: its entries in (ts, seq, id) order, duplicates dropped}.

    The sort is stable, as the script expects nothing more: equal entries end
    up adjacent unless another entry shares their (ts, seq, id), and the
    script drops a repeated id anyway.
    """
    keyed: dict[str, list[tuple[str, str, SortKey]]] = {}
    for rec in records:
        keyed.setdefault(rec[0], []).append(rec)
    by_key = itemgetter(2)
    groups: dict[str, list[str]] = {}
    for token, items in keyed.items():
        items.sort(key=by_key)
        entries = [rec[1] for rec in items]
        groups[token] = [e for i, e in enumerate(entries) if i == 0 or entries[i - 1] != e]
    return groups


def group_records(records: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Record lines -> ({token: sorted unique entries}, malformed lines), for tools and tests."""
    good: list[tuple[str, str, SortKey]] = []
    bad: list[str] = []
    for line in records:
        token, sep, entry = line.partition(" ")
        try:
            if not sep:
                raise ValueError("no space")
            good.append((token, entry, sort_key(entry)))
        except ValueError:
            bad.append(line)
    return group(good), bad
