"""Re-injecting dead letters into the shard streams (``tradeagg dead replay``).

A dead letter keeps what its source saw: the bridge's the raw JSON of an
invalid message or element, the worker's the records of an entry that never
committed. Replay sends each back through the check its source applies:
JSON through the bridge's validation (``parse_message``), records through the
stream entry codec. What passes is appended to the shard streams like any
new input, so the workers apply it; trades already applied are recognised
by their id and skipped, so a replay can run twice. What fails again is
counted and left where it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tradeagg.clock import now_ms
from tradeagg.contract import entry as codec
from tradeagg.contract import keys
from tradeagg.contract.validation import parse_message
from tradeagg.errors import InvalidTrade, MalformedEntry
from tradeagg.settings import Settings
from tradeagg.store.connection import text
from tradeagg.store.stream import ShardStream
from tradeagg.store.streams import append

CHUNK = 2_000  # trades per append


@dataclass
class Letter:
    """One dead letter: its shard, stream id and fields (as text)."""

    shard: int
    id: str
    fields: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"shard": self.shard, "id": self.id, **self.fields}


@dataclass
class ReplayResult:
    letters: int = 0
    replayed: int = 0  # letters whose every trade passed again
    trades: int = 0  # trades appended to the shard streams
    invalid: int = 0  # letters or elements that fail again
    reasons: list[str] = field(default_factory=list)  # the first few failures

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "reasons"} | {
            "first_failures": self.reasons
        }


def letters(client: Any, settings: Settings, shard: int | None, since: str) -> list[Letter]:
    """Dead letters of one shard (or all), from id ``since`` on, oldest first per shard."""
    shards = range(settings.shards) if shard is None else [shard]
    out = []
    for s in shards:
        for raw_id, fields in ShardStream(client, s).dead_letters(since):
            out.append(Letter(s, text(raw_id), {text(k): text(v) for k, v in fields.items()}))
    return out


def replay(
    client: Any,
    settings: Settings,
    chosen: Iterable[Letter],
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Validate and append every trade of ``chosen``; returns the counts.

    ``on_progress(n)`` is called after each letter with the letters handled so far.
    """
    out = ReplayResult()
    now = now_ms()
    trades = []
    per_shard: dict[int, list[str]] = {}
    for letter in chosen:
        out.letters += 1
        raw = letter.fields.get("raw", "")
        failures: list[str] = []
        if letter.fields.get("source") == "worker":
            try:
                decoded = codec.decode({"v": codec.FORMAT_VERSION, "t": raw})
            except MalformedEntry as exc:
                failures.append(exc.reason)
            else:
                failures.extend(reason for reason, _raw in decoded.bad)
                for token, entry, _key in decoded.records:
                    shard = keys.shard_of(token, settings.shards)
                    per_shard.setdefault(shard, []).append(f"{token} {entry}")
                out.trades += len(decoded.records)
        else:
            try:
                good, bad = parse_message(raw, now, settings.max_skew_ms)
            except InvalidTrade as exc:
                good, bad = [], [(-1, None, exc.reason)]
            failures.extend(reason for _i, _e, reason in bad)
            trades.extend(good)
            out.trades += len(good)
        out.invalid += len(failures)
        out.replayed += not failures
        out.reasons.extend(f"{letter.shard}/{letter.id}: {r}" for r in failures[:3])
        if on_progress:
            on_progress(out.letters)
    for i in range(0, len(trades), CHUNK):
        append(client, settings, trades[i : i + CHUNK], src="replay")
    for shard, records in per_shard.items():
        stream = ShardStream(client, shard)
        for i in range(0, len(records), settings.entry_trades):
            stream.add_records(records[i : i + settings.entry_trades], "replay")
    del out.reasons[10:]
    return out
