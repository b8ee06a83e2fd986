"""``ShardStream``: every Redis call on one shard stream and its dead letters.

The bridge adds, the consumer reads and acks, the reclaimer claims, the
worker and the bridge dead-letter, and everyone who needs "how much is left"
asks ``Backlog``, the one definition of it:

- ``lag``: entries not yet delivered to group ``workers`` (Redis 7's group
  ``lag``; when Redis cannot tell, after some deletions, ``XLEN - pending``
  bounds it from above; without a group, the whole stream);
- ``pending``: delivered to a consumer, not acknowledged;
- ``unacked`` = ``lag + pending``: what the workers still owe.

Entries themselves are encoded and decoded by ``tradeagg.contract.entry``.
A write Redis refuses (OOM, READONLY, ...) is raised as redis-py raised it:
``tradeagg.store.refusal`` says whether it is the store's fault or the
entry's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from tradeagg.contract import entry as codec
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.store.connection import text

Entry = tuple[Any, dict[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Backlog:
    """What group ``workers`` has not acknowledged in one shard stream."""

    length: int  # XLEN: entries kept in the stream (acked ones until the janitor trims)
    lag: int  # not yet delivered
    pending: int  # delivered, not acknowledged
    group: bool  # the group exists (a worker started once)

    @property
    def unacked(self) -> int:
        return self.lag + self.pending

    @classmethod
    def from_replies(cls, length: Any, groups: Any) -> Backlog:
        """From XLEN and XINFO GROUPS replies (either may be an error: a missing stream)."""
        length = length if isinstance(length, int) else 0
        info = None
        if isinstance(groups, list):
            info = next((g for g in groups if text(g.get("name")) == keys.STREAM_GROUP), None)
        if info is None:
            return cls(length, length, 0, False)
        pending = int(info.get("pending") or 0)
        lag = info.get("lag")
        lag = int(lag) if lag is not None else max(0, length - pending)
        return cls(length, lag, pending, True)


class ShardStream:
    """Shard ``shard``'s stream ``tradeagg:{sN}:stream`` and dead letters ``tradeagg:{sN}:dead``."""

    def __init__(self, client: Any, shard: int, dead_max: int = 10_000) -> None:
        self.client = client
        self.shard = shard
        self.key = keys.stream(shard)
        self.dead_key = keys.dead(shard)
        self.dead_max = dead_max

    # -- writing --------------------------------------------------------------------
    def add(self, trades: Iterable[Trade], src: str = "", pipe: Any = None) -> Any:
        """XADD one entry holding ``trades``; on ``pipe`` when given (then it is only queued)."""
        return (pipe or self.client).xadd(self.key, codec.encode(trades, src))

    def add_records(self, records: Iterable[str], src: str = "", pipe: Any = None) -> Any:
        """XADD one entry of records already encoded (a replayed dead letter's)."""
        return (pipe or self.client).xadd(self.key, codec.encode_records(records, src))

    def dead_letter(self, fields: Mapping[str, str], pipe: Any = None) -> Any:
        """XADD a dead letter (capped at ``dead_max``, approximately).

        Raises what Redis raised: a caller that would drop the original after
        this (an XACK) must not when the dead letter was refused.
        """
        return (pipe or self.client).xadd(
            self.dead_key, dict(fields), maxlen=self.dead_max, approximate=True
        )

    # -- the consumer group ---------------------------------------------------------
    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.key, keys.STREAM_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(
        self, reader: Any, consumer: str, start: str, count: int, block: int | None = None
    ) -> list[Entry]:
        """XREADGROUP from ``start`` (``>``: new entries; an id: this consumer's pending)."""
        resp = reader.xreadgroup(
            keys.STREAM_GROUP, consumer, {self.key: start}, count=count, block=block
        )
        return resp[0][1] if resp else []

    def ack(self, ids: list[str]) -> int:
        return int(self.client.xack(self.key, keys.STREAM_GROUP, *ids)) if ids else 0

    def claim(
        self, consumer: str, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[Entry]]:
        """XAUTOCLAIM: (next start, entries); ``("0-0", [])`` when the group does not exist."""
        try:
            nxt, entries, *_deleted = self.client.xautoclaim(
                self.key, keys.STREAM_GROUP, consumer, min_idle_ms, start, count=count
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                return "0-0", []
            raise
        return text(nxt), entries

    def deliveries(self, consumer: str, entries: list[Entry]) -> dict[str, int]:
        """Times each of ``entries`` (held by ``consumer``) has been delivered."""
        if not entries:
            return {}
        info = self.client.xpending_range(
            self.key,
            keys.STREAM_GROUP,
            entries[0][0],
            entries[-1][0],
            len(entries),
            consumername=consumer,
        )
        return {text(p["message_id"]): int(p["times_delivered"]) for p in info}

    def consumers(self) -> list[dict[str, Any]]:
        """XINFO CONSUMERS of group ``workers``; empty when the stream or group is missing."""
        try:
            return self.client.xinfo_consumers(self.key, keys.STREAM_GROUP)
        except redis.ResponseError as exc:
            if missing(exc):
                return []
            raise

    def delete_consumer(self, name: str) -> None:
        """XGROUP DELCONSUMER (its pending entries, if any, are dropped: check first)."""
        try:
            self.client.xgroup_delconsumer(self.key, keys.STREAM_GROUP, name)
        except redis.ResponseError as exc:
            if not missing(exc):
                raise

    # -- how much is left -----------------------------------------------------------
    def queue_backlog(self, pipe: Any) -> None:
        """Queue the two commands ``Backlog.from_replies`` reads (XLEN, XINFO GROUPS)."""
        pipe.xlen(self.key)
        pipe.xinfo_groups(self.key)

    def backlog(self) -> Backlog:
        return backlogs(self.client, [self])[0]

    # -- dead letters ---------------------------------------------------------------
    def dead_letters(self, since: str = "-", count: int | None = None) -> list[Entry]:
        """Dead letters from id ``since`` on (inclusive), oldest first."""
        return self.client.xrange(self.dead_key, min=since, max="+", count=count)


def backlogs(client: Any, streams: list[ShardStream]) -> list[Backlog]:
    """``Backlog`` of every stream in one pipelined round trip (per node on a cluster)."""
    pipe = client.pipeline(transaction=False)
    for s in streams:
        s.queue_backlog(pipe)
    replies = pipe.execute(raise_on_error=False)
    for r in replies:  # a missing stream or group reads as such; other errors are Redis failing
        if isinstance(r, Exception) and not missing(r):
            raise r
    return [Backlog.from_replies(replies[2 * i], replies[2 * i + 1]) for i in range(len(streams))]


def missing(exc: Exception) -> bool:
    """The error of a stream or group that does not exist (yet)."""
    message = str(exc).lower()
    return "no such key" in message or "nogroup" in message


def unacked(client: Any, shards: int) -> int:
    """Entries of all shard streams the workers still owe (lag + pending)."""
    return sum(b.unacked for b in backlogs(client, [ShardStream(client, s) for s in range(shards)]))
