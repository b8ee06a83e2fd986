"""Shard consumers: XREADGROUP a shard stream, apply per token, XACK after commit.

One greenlet per shard reads its stream in consumer group ``workers``: first
the entries this consumer already holds (pending after a restart or a failed
apply), then new ones. A batch is grouped by token (block-level aggregation),
cut into Lua calls, and the calls run in a bounded gevent pool shared by all
shards of the process. An entry is acknowledged only when every token it
carries has committed; a failing token leaves its entries pending, logged and
counted, without touching other tokens.

Redis refusing a write (out of memory, read-only, busy, redirected, the
connection lost: ``tradeagg.store.refusal``) is not the entries' fault: the
same calls, dead letters or XACK are retried in place with backoff, never by
re-reading, so the delivery count (which makes an entry poison) only counts
genuine failures. An entry is dropped (acked) as poison or as malformed only
once its dead letter is stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import gevent.pool
import redis

from tradeagg.clock import now_ms
from tradeagg.contract import entry as codec
from tradeagg.engine.apply import Engine, TokenResult
from tradeagg.engine.integrity import Integrity
from tradeagg.errors import RefusedWrite, StoreError
from tradeagg.logs import kv
from tradeagg.observe.metrics import Metrics
from tradeagg.runtime import retry
from tradeagg.runtime.pressure import Pressure
from tradeagg.settings import Settings
from tradeagg.store.connection import text
from tradeagg.store.replication import Replication
from tradeagg.store.stream import ShardStream

log = logging.getLogger("tradeagg.worker")

Entry = tuple[str, dict[bytes, bytes]]
RAW_KEEP = 2_000  # characters of a malformed entry or record kept in its dead letter


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
        pressure: Pressure | None = None,
        on_applied: Callable[[list[TokenResult]], None] | None = None,
    ) -> None:
        self.on_applied = on_applied  # told of committed results (the change feed)
        self.shard = shard
        self.pressure = pressure or Pressure(metrics)
        self.stream = ShardStream(engine.client, shard, settings.dead_letter_max)
        self.reader = reader
        self.client = engine.client
        self.engine = engine
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.consumer = consumer
        self.stopping = stopping
        self.backlog_id = "0"  # re-read own pending entries first
        self.poison_acked = 0  # entries screened out as poison, their dead letter stored
        self.integrity = Integrity(self.client, settings)
        self.replication = Replication(
            self.client, settings.redis_wait_replicas, settings.redis_wait_timeout_ms
        )

    def read(self) -> list[Entry]:
        s = self.settings
        if self.backlog_id != ">":
            entries = self.stream.read(self.reader, self.consumer, self.backlog_id, s.read_count)
            if entries:
                last = entries[-1][0]
                self.backlog_id = last.decode() if isinstance(last, bytes) else last
                return entries
            self.backlog_id = ">"
        t0 = time.perf_counter()
        entries = self.stream.read(self.reader, self.consumer, ">", s.read_count, s.block_ms)
        if entries:
            self.metrics.timing("redis.xreadgroup", (time.perf_counter() - t0) * 1000)
        return entries

    def run(self) -> None:
        """Read, apply, ack until stopping. Redis errors propagate to the supervisor."""
        self.stream.ensure_group()
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
        batch = codec.decode_batch(entries)
        held = {e for e, reason, raw in batch.rejected if not self.dead_letter(e, reason, raw)}
        groups = codec.group(batch.records)
        calls = self.engine.calls(groups)
        results: list[TokenResult] = []
        failed_tokens: set[str] = set()
        for call, outcome in zip(calls, self.apply_accepted(calls), strict=True):
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
        if self.on_applied is not None and self.engine.cluster:  # else told per call (_apply)
            self.on_applied(results)
        if corrupt:  # damage found mid-apply: the re-read of these entries rebuilds the token
            try:
                self.integrity.invalidate(corrupt)
            except redis.RedisError as exc:
                log.error("invalidate failed %s", kv(shard=self.shard, error=str(exc)[:200]))
        done = [i for i in batch.ids if i not in held and not (batch.tokens_of[i] & failed_tokens)]
        if self.before_ack is not None and done:
            self.before_ack()
        if done and not self.replicated():
            return len(batch.ids)  # nothing acked: these entries are read and applied again
        if done:
            t1 = time.perf_counter()
            if not self.ack(done):
                return len(batch.ids)  # stopping while Redis refuses: re-read next time
            self.metrics.timing("redis.xack", (time.perf_counter() - t1) * 1000)
        self.account(results, groups, len(done), t0)
        return len(batch.ids) - len(done)

    def replicated(self) -> bool:
        """With TRADEAGG_REDIS_WAIT_REPLICAS: are this batch's applies on enough replicas?

        A WAIT that times out is retried in place (the applies are on this
        primary, replicas are catching up). Any other Redis error may mean the
        primary changed under us, so the applies may be gone with it: then
        nothing is acknowledged and the entries are applied again (trades are
        idempotent), never acknowledged on the strength of another node.
        """
        try:
            return self.replication.confirm_patiently(self.stopping, gevent.sleep, self._lagging)
        except redis.RedisError as exc:
            log.error(
                "replica wait failed, entries stay pending %s",
                kv(shard=self.shard, error=type(exc).__name__, detail=str(exc)[:200]),
            )
            return False

    def _lagging(self, exc: Exception) -> None:
        self.metrics.incr("redis.wait_timeouts")
        log.warning("replicas behind, ack held %s", kv(shard=self.shard, detail=exc))

    def screen(self, entries: list[Entry]) -> list[Entry]:
        """Poison check of redelivered entries: too many deliveries -> dead letter and ack.

        An entry this consumer has been handed more than ``max_deliveries``
        times (its own re-reads and claims both count) never committed; it
        goes to the dead-letter stream with its records (so that ``tradeagg
        dead replay`` can re-inject it) and is acked once that is stored, so
        that it stops blocking the shard; a refused dead letter leaves it
        pending. Called on the re-read and reclaim paths only: a first
        delivery cannot be poison.
        """
        count = self.stream.deliveries(self.consumer, entries)
        limit = self.settings.max_deliveries
        keep: list[Entry] = []
        poison: list[str] = []
        for raw_id, fields in entries:
            entry_id = text(raw_id)
            n = count.get(entry_id, 0)
            reason = f"delivered {n} times without success"
            if n <= limit:
                keep.append((raw_id, fields))
            elif self.dead_letter(entry_id, reason, codec.replayable(fields), keep_all=True):
                self.metrics.incr("entries.poison")
                poison.append(entry_id)
        if self.ack(poison):
            self.poison_acked += len(poison)
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
        if self.on_applied is not None:  # committed: announced now, not after the whole batch
            self.on_applied(out)
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
            (codec.sort_key(groups[r.token][-1])[0] for r in results if r.applied), default=0
        )
        if newest:
            m.timing("visible.latency", max(0, now_ms() - newest))

    def apply_accepted(self, calls: list[list[tuple[str, list[str]]]]) -> list[Any]:
        """``apply_all``, with the calls Redis refused retried in place until accepted.

        Each call is atomic and re-applying one is harmless (the script drops
        trades it holds), so a retry repeats only the refused calls. When the
        process stops first, those calls come back as their refusal.
        """
        outcomes: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))

        def attempt() -> None:
            nonlocal todo
            refusal: RefusedWrite | None = None
            left = []
            for i, out in zip(todo, self.apply_all([calls[i] for i in todo]), strict=True):
                outcomes[i] = out
                if isinstance(out, RefusedWrite):
                    left.append(i)
                    refusal = out
            todo = left
            if refusal is not None:
                raise refusal

        if calls and self.accepted("apply", attempt):
            self.pressure.accepted()
        return outcomes

    def ack(self, ids: list[str]) -> bool:
        """XACK ``ids``, retried while Redis refuses; False if stopping first."""
        return not ids or self.accepted("ack", lambda: self.stream.ack(ids))

    def dead_letter(self, entry_id: str, reason: str, raw: str, keep_all: bool = False) -> bool:
        """Store a dead letter; True once stored (only then may its entry be acked).

        ``raw`` is cut to ``RAW_KEEP`` characters unless ``keep_all`` (a poison
        entry keeps its records, a bounded entry, for replay).
        """
        fields = {
            "reason": reason,
            "entry": entry_id,
            "raw": raw if keep_all else raw[:RAW_KEEP],
            "source": "worker",
        }
        try:
            stored = self.accepted("dead-letter", lambda: self.stream.dead_letter(fields))
        except redis.RedisError as exc:
            stored = False
            log.error(
                "dead letter not written, entry stays pending %s",
                kv(shard=self.shard, entry=entry_id, error=str(exc)[:200]),
            )
        if stored:
            self.pressure.accepted()
            self.metrics.incr("deadletters")
            log.warning("dead letter %s", kv(shard=self.shard, entry=entry_id, reason=reason))
        return stored

    def accepted(self, what: str, fn: Callable[[], Any]) -> bool:
        """``fn()`` retried while Redis refuses it (``retry.until_accepted``); False if stopping."""
        who = f"shard={self.shard} {what}"

        def refused(exc: BaseException) -> None:
            self.metrics.incr("batch.refused")
            self.pressure.refused(who, exc)

        done, _ = retry.until_accepted(fn, until=self.stopping, on_refused=refused)
        return done
