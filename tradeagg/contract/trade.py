"""The Trade value and its two wire forms: shard-stream records and list entries.

A shard stream entry (``tradeagg:{sN}:stream``) packs many trades::

    v = "1"                 format version
    t = "<record>\\n<record>..."   one record per trade
    src = "..."             optional: where the trades came from (topic/partition/offset)

A record is ``<token> <ts> <seq> <b|s> <quote_nano> <price> <id> <digest>``;
the part after the token is exactly the list entry kept in ``token:{A}:trades``.
The digest (20 hex digits of SHA-1 of the id) keys the token's id index
``tradeagg:{A}:ids``: the same id is one trade whatever its ts or seq. A
record without a digest is accepted too (the engine computes it). Every
field is free of spaces (the contract forbids whitespace in ids and
addresses), so splitting on a space is unambiguous. ``quote_nano`` is the
quote amount in units of 1e-9, an integer; ``price`` is a plain decimal.
Amount, trader and block are validated but not stored: the windows do not
need them, and every byte per trade is paid for an hour per token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

FORMAT_VERSION = "1"
DIGEST = 20


@dataclass(frozen=True, slots=True)
class Trade:
    """A validated trade, as the engine needs it."""

    id: str
    token: str
    side: str  # "buy" or "sell"
    quote_nano: int
    price: str  # plain decimal string, > 0
    ts: int
    seq: int = 0
    amount: str = ""
    trader: str = ""
    block: int | None = None

    @property
    def entry(self) -> str:
        """The list entry of this trade (what ``token:{A}:trades`` holds)."""
        side = "b" if self.side == "buy" else "s"
        return (
            f"{self.ts} {self.seq} {side} {self.quote_nano} {self.price} {self.id} "
            f"{id_digest(self.id)}"
        )

    @property
    def record(self) -> str:
        """The shard-stream record of this trade."""
        return f"{self.token} {self.entry}"

    @property
    def quote(self) -> Decimal:
        return Decimal(self.quote_nano).scaleb(-9)


def encode_records(trades: Iterable[Trade]) -> str:
    """The ``t`` field of a stream entry."""
    return "\n".join(t.record for t in trades)


def stream_fields(trades: Iterable[Trade], src: str = "") -> dict[str, str]:
    """The fields of one shard-stream entry holding ``trades``."""
    fields = {"v": FORMAT_VERSION, "t": encode_records(trades)}
    if src:
        fields["src"] = src
    return fields


def split_record(record: str) -> tuple[str, str]:
    """``(token, list entry)`` of one record; ValueError if it has no space."""
    token, entry = record.split(" ", 1)
    return token, entry


def id_digest(ident: str) -> str:
    """The id's digest kept in ``tradeagg:{A}:ids``: 20 hex digits of SHA-1 (80 bits)."""
    return hashlib.sha1(ident.encode("ascii", "replace")).hexdigest()[:DIGEST]


def entry_sort_key(entry: str) -> tuple[int, int, str]:
    """The (ts, seq, id) order of a list entry (with or without its digest)."""
    ts, seq, _side, _q, _price, ident, *_digest = entry.split(" ")
    return int(ts), int(seq), ident


def parse_entry(entry: str) -> Trade:
    """A list entry back to a Trade (token unknown: empty)."""
    ts, seq, side, quote_nano, price, ident, *_digest = entry.split(" ")
    return Trade(
        id=ident,
        token="",
        side="buy" if side == "b" else "sell",
        quote_nano=int(quote_nano),
        price=price,
        ts=int(ts),
        seq=int(seq),
    )
