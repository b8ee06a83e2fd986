"""Writing trades into many shard streams at once: the bridge's output, and a path for tools.

Trades are packed per shard, ``settings.entry_trades`` to an entry, and sent
with one pipelined round trip of XADDs, so a stream entry amortises Redis's
per-entry cost over many trades.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.settings import Settings
from tradeagg.store.stream import ShardStream


def pack(trades: Iterable[Trade], settings: Settings) -> dict[int, list[list[Trade]]]:
    """Trades per shard, cut into entries of at most ``entry_trades``."""
    per_shard: dict[int, list[Trade]] = {}
    for t in trades:
        per_shard.setdefault(keys.shard_of(t.token, settings.shards), []).append(t)
    size = settings.entry_trades
    return {
        shard: [items[i : i + size] for i in range(0, len(items), size)]
        for shard, items in per_shard.items()
    }


def append(client: Any, settings: Settings, trades: Iterable[Trade], src: str = "") -> list[str]:
    """XADD ``trades`` to their shard streams in one pipeline; returns the entry ids."""
    pipe = client.pipeline(transaction=False)
    n = 0
    for shard, entries in pack(trades, settings).items():
        stream = ShardStream(client, shard)
        for chunk in entries:
            stream.add(chunk, src, pipe)
            n += 1
    if not n:
        return []
    return [i.decode() if isinstance(i, bytes) else i for i in pipe.execute()]
