"""Reclaiming entries left pending by dead or stuck consumers.

A worker killed between its Lua commit and its XACK leaves entries pending
under a consumer name that nobody reads again (names carry the pid).
``Reclaimer`` moves such entries to its own consumer with XAUTOCLAIM and runs
them through the worker's own path (``ShardConsumer.screen`` for poison, then
``ShardConsumer.process``): applying twice is harmless because the engine
drops trades it already holds, so a claim from a consumer that was merely
slow is safe too.

Used by ``tradeagg reclaim`` (once, any idle time) and by every worker
process (at startup and periodically, ``settings.reclaim_idle_ms``). The
periodic pass also deletes consumers that hold nothing and have been idle
for long (XGROUP DELCONSUMER), so the group does not grow by one consumer
per restarted process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import gevent.pool

from tradeagg.engine.apply import Engine, TokenResult
from tradeagg.logs import kv
from tradeagg.observe.metrics import Metrics
from tradeagg.runtime import retry
from tradeagg.runtime.consumer import ShardConsumer
from tradeagg.runtime.pressure import Pressure
from tradeagg.settings import Settings
from tradeagg.store.connection import text

log = logging.getLogger("tradeagg.reclaim")

FORGET_AFTER_IDLES = 10  # a consumer idle this many reclaim_idle_ms with nothing pending goes


@dataclass
class ClaimResult:
    claimed: int = 0
    poison: int = 0
    left_pending: int = 0


class Reclaimer:
    """Claims idle pending entries of every shard into ``consumer`` and applies them."""

    def __init__(
        self,
        engine: Engine,
        pool: gevent.pool.Pool,
        settings: Settings,
        metrics: Metrics,
        consumer: str,
        stopping: Callable[[], bool] = lambda: False,
        pressure: Pressure | None = None,
        on_applied: Callable[[list[TokenResult]], None] | None = None,
    ) -> None:
        self.client = engine.client
        self.settings = settings
        self.metrics = metrics
        self.consumer = consumer
        self.stopping = stopping
        self.shards = [
            ShardConsumer(
                shard,
                None,
                engine,
                pool,
                settings,
                metrics,
                consumer,
                stopping,
                pressure,
                on_applied,
            )
            for shard in range(settings.shards)
        ]

    def reclaim(
        self, min_idle_ms: int, on_progress: Callable[[int], None] | None = None
    ) -> ClaimResult:
        """One pass over every shard; returns what was claimed and what stayed pending.

        ``on_progress(n)`` is called after each claimed batch with the entries claimed so far.
        """
        out = ClaimResult()
        for sc in self.shards:
            if self.stopping():
                break
            self.reclaim_shard(sc, min_idle_ms, out, on_progress)
        return out

    def reclaim_shard(
        self,
        sc: ShardConsumer,
        min_idle_ms: int,
        out: ClaimResult,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        start = "0-0"
        count = self.settings.read_count
        while not self.stopping():
            nxt, entries = sc.stream.claim(self.consumer, min_idle_ms, start, count)
            if entries:
                out.claimed += len(entries)
                self.metrics.incr("entries.reclaimed", len(entries))
                log.info(
                    "claimed idle entries %s",
                    kv(shard=sc.shard, entries=len(entries), first=text(entries[0][0])),
                )
                before = sc.poison_acked
                kept = sc.screen(entries)
                poison = sc.poison_acked - before
                out.poison += poison
                out.left_pending += len(entries) - len(kept) - poison  # dead letter refused
                if kept:
                    out.left_pending += sc.process(kept)
                if on_progress:
                    on_progress(out.claimed)
            start = nxt
            if start == "0-0":
                return

    def forget_idle_consumers(self) -> int:
        """XGROUP DELCONSUMER for consumers with nothing pending, idle for long."""
        limit = FORGET_AFTER_IDLES * self.settings.reclaim_idle_ms
        gone = 0
        for sc in self.shards:
            for c in sc.stream.consumers():
                name = text(c["name"])
                if name != self.consumer and int(c["pending"]) == 0 and int(c["idle"]) > limit:
                    sc.stream.delete_consumer(name)
                    gone += 1
                    log.info(
                        "idle consumer removed %s",
                        kv(shard=sc.shard, consumer=name, idle_ms=c["idle"]),
                    )
        return gone

    def run(self, wait: Callable[[float], bool]) -> None:
        """Worker part: a pass at startup, then every half ``reclaim_idle_ms``, until stopping."""
        interval = self.settings.reclaim_idle_ms / 2000.0
        while not self.stopping():
            retry.call(
                log, "reclaim", self.reclaim, self.settings.reclaim_idle_ms, until=self.stopping
            )
            retry.call(log, "forget-consumers", self.forget_idle_consumers, until=self.stopping)
            if wait(interval):
                return
