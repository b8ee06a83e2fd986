"""Shard consumers: XREADGROUP a shard stream, apply per token, XACK after commit.

One greenlet per shard reads its stream in consumer group ``workers``: first
the entries this consumer already holds (pending after a restart or a failed
apply), then new ones. A batch is grouped by token (block-level aggregation),
cut into Lua calls, and the calls run in a bounded gevent pool shared by all
shards of the process. An entry is acknowledged only when every token it
carries has committed; a failing token leaves its entries pending, logged and
counted, without touching other tokens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gevent.pool
import redis

from tradeagg.contract import keys
from tradeagg.contract.trade import FORMAT_VERSION
from tradeagg.engine.apply import TOKEN_RE, Engine, TokenResult, group_records, now_ms
from tradeagg.engine.integrity import Integrity
from tradeagg.errors import StoreError
from tradeagg.logs import kv
from tradeagg.observe.metrics import Metrics
from tradeagg.settings import Settings
from tradeagg.store.connection import text

log = logging.getLogger("tradeagg.worker")

Entry = tuple[str, dict[bytes, bytes]]


@dataclass
class Batch:
    """A decoded batch: records per entry, and what could not be used."""

    ids: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    tokens_of: dict[str, set[str]] = field(default_factory=dict)  # entry id -> tokens
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (entry id, reason, raw)


def decode(entries: list[Entry]) -> Batch:
    """Split entries into records; anything malformed becomes a rejection with its reason."""
    batch = Batch()
    for raw_id, fields in entries:
        entry_id = text(raw_id)
        batch.ids.append(entry_id)
        if not fields:  # deleted by XTRIM/XDEL while pending
            batch.tokens_of[entry_id] = set()
            continue
        version = fields.get(b"v", b"").decode("ascii", "replace")
        payload = fields.get(b"t")
        if version != FORMAT_VERSION or payload is None:
            batch.rejected.append(
                (entry_id, f"unknown entry format v={version!r}", repr(fields)[:500])
            )
            batch.tokens_of[entry_id] = set()
            continue
        try:
            body = payload.decode("ascii")
        except UnicodeDecodeError:
            batch.rejected.append((entry_id, "entry is not ASCII", repr(payload[:500])))
            batch.tokens_of[entry_id] = set()
            continue
        tokens: set[str] = set()
        for record in body.split("\n"):
            token = record.partition(" ")[0]
            if not TOKEN_RE.match(token):
                batch.rejected.append((entry_id, "bad token in record", record[:500]))
                continue
            tokens.add(token)
            batch.records.append(record)
        batch.tokens_of[entry_id] = tokens
    return batch


class ShardConsumer:
    """Consumes one shard stream for this process."""

    #: Runs after a batch committed, before its XACK: a seam for fault tests
    #: (tests/support/crashing_worker.py), never set by the service itself.
    before_ack: ClassVar[Callable[[], None] | None] = None

    def __init__(
        self,
        shard: int,
        reader: Any,
        engine: Engine,
        pool: gevent.pool.Pool,
        settings: Settings,
        metrics: Metrics,
        consumer: str,
        stopping: Callable[[], bool],
    ) -> None:
        self.shard = shard
        self.stream = keys.stream(shard)
        self.reader = reader
        self.client = engine.client
        self.engine = engine
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.consumer = consumer
        self.stopping = stopping
        self.backlog_id = "0"  # re-read own pending entries first
        self.integrity = Integrity(self.client, settings)

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, keys.STREAM_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self) -> list[Entry]:
        s = self.settings
        if self.backlog_id != ">":
            resp = self.reader.xreadgroup(
                keys.STREAM_GROUP, self.consumer, {self.stream: self.backlog_id}, count=s.read_count
            )
            entries = resp[0][1] if resp else []
            if entries:
                last = entries[-1][0]
                self.backlog_id = last.decode() if isinstance(last, bytes) else last
                return entries
            self.backlog_id = ">"
        t0 = time.perf_counter()
        resp = self.reader.xreadgroup(
            keys.STREAM_GROUP,
            self.consumer,
            {self.stream: ">"},
            count=s.read_count,
            block=s.block_ms,
        )
        if resp:
            self.metrics.timing("redis.xreadgroup", (time.perf_counter() - t0) * 1000)
        return resp[0][1] if resp else []

    def run(self) -> None:
        """Read, apply, ack until stopping. Redis errors propagate to the supervisor."""
        self.ensure_group()
        self.backlog_id = "0"
        log.info("shard consumer started %s", kv(shard=self.shard, consumer=self.consumer))
        while not self.stopping():
            entries = self.read()
            if entries and self.backlog_id != ">":
                entries = self.screen(entries)
            if entries:
                failed = self.process(entries)
                if failed:
                    self.backlog_id = "0"
                    gevent.sleep(min(5.0, 0.2 * failed))

    def process(self, entries: list[Entry]) -> int:
        """Apply one batch; ack what committed. Returns the number of entries left pending."""
        t0 = time.perf_counter()
        batch = decode(entries)
        for entry_id, reason, raw in batch.rejected:
            self.dead_letter(entry_id, reason, raw)
        groups, bad = group_records(batch.records)
        for record in bad:
            self.dead_letter("", "unparsable record", record[:500])
        calls = self.engine.calls(groups)
        results: list[TokenResult] = []
        failed_tokens: set[str] = set()
        for call, outcome in zip(calls, self.apply_all(calls), strict=True):
            if isinstance(outcome, Exception):
                failed_tokens.update(token for token, _ in call)
                log.error(
                    "apply failed, entries stay pending %s",
                    kv(shard=self.shard, tokens=len(call), error=str(outcome)[:300]),
                )
                continue
            results.extend(outcome)
        corrupt: list[str] = []
        for r in results:
            if r.failed:
                failed_tokens.add(r.token)
                log.error(
                    "token apply failed %s", kv(shard=self.shard, token=r.token, reason=r.reason)
                )
                if r.corrupt:
                    corrupt.append(r.token)
            elif r.rebuilt >= 0:
                self.metrics.incr("tokens.rebuilt")
                log.warning(
                    "token state rebuilt from its list %s",
                    kv(shard=self.shard, token=r.token, reason=r.reason, dropped=r.rebuilt),
                )
        if corrupt:  # damage found mid-apply: the re-read of these entries rebuilds the token
            try:
                self.integrity.invalidate(corrupt)
            except redis.RedisError as exc:
                log.error("invalidate failed %s", kv(shard=self.shard, error=str(exc)[:200]))
        done = [i for i in batch.ids if not (batch.tokens_of[i] & failed_tokens)]
        if self.before_ack is not None and done:
            self.before_ack()
        if done:
            t1 = time.perf_counter()
            self.client.xack(self.stream, keys.STREAM_GROUP, *done)
            self.metrics.timing("redis.xack", (time.perf_counter() - t1) * 1000)
        self.account(results, groups, len(done), t0)
        return len(batch.ids) - len(done)

    def screen(self, entries: list[Entry]) -> list[Entry]:
        """Poison check of redelivered entries: too many deliveries -> dead letter and ack.

        An entry this consumer has been handed more than ``max_deliveries``
        times (its own re-reads and claims both count) never committed; it
        goes to the dead-letter stream with its raw fields so that it stops
        blocking the shard. Called on the re-read and reclaim paths only:
        a first delivery cannot be poison.
        """
        first, last = entries[0][0], entries[-1][0]
        info = self.client.xpending_range(
            self.stream, keys.STREAM_GROUP, first, last, len(entries), consumername=self.consumer
        )
        count = {text(p["message_id"]): int(p["times_delivered"]) for p in info}
        limit = self.settings.max_deliveries
        keep: list[Entry] = []
        poison: list[str] = []
        for raw_id, fields in entries:
            entry_id = text(raw_id)
            n = count.get(entry_id, 0)
            if n > limit:
                self.metrics.incr("entries.poison")
                self.dead_letter(entry_id, f"delivered {n} times without success", repr(fields))
                poison.append(entry_id)
            else:
                keep.append((raw_id, fields))
        if poison:
            self.client.xack(self.stream, keys.STREAM_GROUP, *poison)
        return keep

    def apply_all(self, calls: list[list[tuple[str, list[str]]]]) -> list[Any]:
        """Outcome per call: its results or the exception that stopped it.

        On one Redis the calls run side by side in the process's pool; on a
        cluster, where tokens rarely share a slot and calls are small, they go
        in one pipeline that redis-py splits per node.
        """
        if self.engine.cluster:
            t0 = time.perf_counter()
            out = self.pool.spawn(self.engine.apply_calls, calls).get()
            self.metrics.timing("apply.latency", (time.perf_counter() - t0) * 1000)
            return out
        return list(self.pool.imap(self._apply, calls))

    def _apply(self, call: list[tuple[str, list[str]]]) -> list[TokenResult] | Exception:
        t0 = time.perf_counter()
        try:
            out = self.engine.apply_call(call)
        except StoreError as exc:
            return exc
        self.metrics.timing("apply.latency", (time.perf_counter() - t0) * 1000)
        return out

    def account(
        self, results: list[TokenResult], groups: dict[str, list[str]], acked: int, t0: float
    ) -> None:
        m = self.metrics
        applied = sum(r.applied for r in results)
        m.incr("trades.applied", applied)
        m.incr("trades.duplicate", sum(r.duplicates for r in results))
        m.incr("trades.late", sum(r.late for r in results))
        over = sum(r.over_capacity for r in results)
        if over:
            m.incr("trades.over_capacity", over)
            log.warning(
                "token list at capacity, trades refused %s", kv(shard=self.shard, trades=over)
            )
        for r in results:
            if r.unparsable:  # refused by the script's own checks (e.g. a quote too large)
                m.incr("trades.unparsable", r.unparsable)
                log.warning(
                    "trades refused by the engine %s",
                    kv(shard=self.shard, token=r.token, trades=r.unparsable, reason=r.reason),
                )
        m.incr("entries.acked", acked)
        m.timing("batch.latency", (time.perf_counter() - t0) * 1000)
        newest = max(
            (int(groups[r.token][-1].partition(" ")[0]) for r in results if r.applied), default=0
        )
        if newest:
            m.timing("visible.latency", max(0, now_ms() - newest))

    def dead_letter(self, entry_id: str, reason: str, raw: str) -> None:
        log.warning("dead letter %s", kv(shard=self.shard, entry=entry_id, reason=reason))
        self.metrics.incr("deadletters")
        try:
            self.client.xadd(
                keys.dead(self.shard),
                {"reason": reason, "entry": entry_id, "raw": raw[:2000], "source": "worker"},
                maxlen=self.settings.dead_letter_max,
                approximate=True,
            )
        except redis.RedisError as exc:
            log.error("dead letter not written %s", kv(shard=self.shard, error=str(exc)))
