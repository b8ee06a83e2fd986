"""The Trade value: what validation produces and the engine needs.

Its wire forms (stream records, list entries, the id digest) belong to the
stream entry codec, ``tradeagg.contract.entry``. Amount, trader and block
are validated but not stored: the windows do not need them, and every byte
per trade is paid for an hour per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradeagg.contract import entry as codec
from tradeagg.contract.entry import id_digest

__all__ = ["Trade", "id_digest"]


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
        return codec.list_entry(self)

    @property
    def record(self) -> str:
        """The shard-stream record of this trade."""
        return codec.record(self)

    @property
    def quote(self) -> Decimal:
        return Decimal(self.quote_nano).scaleb(-9)
