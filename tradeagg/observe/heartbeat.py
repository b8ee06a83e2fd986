"""A process watching itself: heartbeat, periodic gauges, rate-limited warnings.

``start(...)`` spawns, under the process's Service, the parts every
long-running tradeagg process needs to be operable: a heartbeat key that
``tradeagg health`` reads, gauges of the shard streams, active tokens and
Redis memory, an event-loop lateness probe, and warnings (requirement 7.4)
when a figure crosses its threshold: one WARNING line with the figures and a
``warnings.<name>`` count while it stays on, repeated at most every
``TRADEAGG_WARN_REPEAT_S``, and one INFO line when it clears.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import redis

from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.logs import kv, metric_segment, process_name
from tradeagg.observe import probes
from tradeagg.observe.catalogue import WARNINGS
from tradeagg.observe.metrics import Metrics, run_flusher
from tradeagg.settings import Settings

log = logging.getLogger("tradeagg.observe")

LOOP_TICK_S = 0.05


class Alarm:
    """One warning: logs when it turns on (then at most every ``repeat_s``) and when it clears."""

    def __init__(
        self,
        name: str,
        metrics: Metrics,
        repeat_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.metrics = metrics
        self.repeat_s = repeat_s
        self.clock = clock
        self.on = False
        self.since = 0.0
        self.logged = 0.0

    def check(self, on: bool, **figures: Any) -> None:
        now = self.clock()
        if on:
            self.metrics.incr(f"warnings.{self.name}")
            if not self.on:
                self.on, self.since = True, now
            elif now - self.logged < self.repeat_s:
                return
            self.logged = now
            log.warning(
                "warning %s",
                kv(warning=self.name, on_for_s=f"{now - self.since:.0f}", **figures),
            )
        elif self.on:
            self.on = False
            log.info(
                "warning cleared %s",
                kv(warning=self.name, on_for_s=f"{now - self.since:.0f}", **figures),
            )


class LoopProbe:
    """How late this greenlet wakes up: the event loop was blocked that long.

    It also samples the worker pool every tick, so utilisation is an average
    over the interval rather than one instant.
    """

    def __init__(self, pool_utilisation: Callable[[], float] | None = None) -> None:
        self.pool_utilisation = pool_utilisation
        self.worst_ms = 0.0
        self.pool_sum = 0.0
        self.pool_n = 0

    def run(self, stopping: Any) -> None:
        while not stopping.is_set():
            t0 = time.perf_counter()
            gevent.sleep(LOOP_TICK_S)
            late = (time.perf_counter() - t0 - LOOP_TICK_S) * 1000
            self.worst_ms = max(self.worst_ms, late)
            if self.pool_utilisation is not None:
                self.pool_sum += self.pool_utilisation()
                self.pool_n += 1

    def take(self) -> tuple[float, float | None]:
        """(worst lateness ms, mean pool utilisation 0..1 or None) since the last take."""
        worst, self.worst_ms = self.worst_ms, 0.0
        pool = None
        if self.pool_utilisation is not None:
            pool = self.pool_sum / self.pool_n if self.pool_n else self.pool_utilisation()
            self.pool_sum, self.pool_n = 0.0, 0
        return worst, pool


class Observer:
    """Probes and heartbeat of one process (``kind``, ``name``)."""

    def __init__(
        self,
        client: Any,
        settings: Settings,
        metrics: Metrics,
        kind: str,
        name: str,
        loop: LoopProbe,
        figures: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.kind = kind
        self.name = name
        self.key = keys.heartbeat(kind, name)
        # gauges of this process alone carry its name: dynos must not overwrite each other
        self.own = metric_segment(process_name(settings.process_name))
        self.loop = loop
        self.figures = figures
        self.started = now_ms()
        self.last_totals: dict[str, int] = {}
        self.last_at = time.monotonic()
        repeat = settings.warn_repeat_s
        self.alarms = {
            n: Alarm(n, metrics, repeat)
            for n in WARNINGS
        }

    def run(self, service: Any) -> None:
        try:
            while True:
                self.tick()
                if service.sleep(self.settings.heartbeat_interval):
                    return
        finally:
            self.forget()

    def tick(self) -> dict[str, Any]:
        """One probe round: gauges, warnings, heartbeat. Returns the heartbeat."""
        s, m, a = self.settings, self.metrics, self.alarms
        beat: dict[str, Any] = {}
        worst, pool = self.loop.take()
        m.gauge(f"loop.block_ms.{self.own}", round(worst, 1))
        a["loop_block"].check(
            worst > s.warn_loop_block_ms,
            worst_ms=f"{worst:.0f}",
            threshold_ms=s.warn_loop_block_ms,
        )
        beat["loop_block_ms"] = round(worst, 1)
        if pool is not None:
            pct = round(pool * 100, 1)
            m.gauge(f"pool.utilisation.{self.own}", pct)
            a["pool"].check(pct >= s.warn_pool_pct, utilisation_pct=pct, threshold=s.warn_pool_pct)
            beat["pool_utilisation_pct"] = pct
        try:
            self.streams(beat)
            self.memory(beat)
            self.heartbeat(beat)
            a["redis"].check(False)
        except redis.RedisError as exc:
            a["redis"].check(True, error=type(exc).__name__, detail=str(exc)[:200])
        return beat

    def streams(self, beat: dict[str, Any]) -> None:
        s, m = self.settings, self.metrics
        shards = probes.shard_figures(self.client, s)
        for f in shards:
            m.gauge(f"stream.backlog.s{f.shard}", f.backlog)
            m.gauge(f"stream.pending.s{f.shard}", f.pending)
            m.gauge(f"stream.pending_age_ms.s{f.shard}", f.pending_age_ms)
        active = sum(f.active for f in shards)
        m.gauge("tokens.active", active)
        m.gauge("deadletters.stored", sum(f.dead for f in shards))
        over = [f for f in shards if f.backlog > s.warn_backlog]
        self.alarms["backlog"].check(
            bool(over),
            shards=",".join(f"s{f.shard}:{f.backlog}" for f in over) or "-",
            backlog=sum(f.backlog for f in shards),
            threshold=s.warn_backlog,
        )
        oldest = max(shards, key=lambda f: f.pending_age_ms)
        self.alarms["pending_age"].check(
            oldest.pending_age_ms > s.warn_pending_age_ms,
            shard=oldest.shard,
            age_ms=oldest.pending_age_ms,
            pending=oldest.pending,
            threshold_ms=s.warn_pending_age_ms,
        )
        beat["backlog"] = sum(f.backlog for f in shards)
        beat["pending"] = sum(f.pending for f in shards)
        beat["pending_age_ms"] = oldest.pending_age_ms
        beat["tokens_active"] = active

    def memory(self, beat: dict[str, Any]) -> None:
        mem = probes.memory(self.client)
        self.metrics.gauge("redis.memory.used", mem.used)
        if mem.pct is not None:
            self.metrics.gauge("redis.memory.pct", mem.pct)
        self.alarms["memory"].check(
            mem.pct is not None and mem.pct >= self.settings.warn_memory_pct,
            used=mem.used,
            maxmemory=mem.maximum,
            pct=mem.pct,
            threshold_pct=self.settings.warn_memory_pct,
            node=mem.node or "-",
        )
        beat["redis_memory_pct"] = mem.pct

    def heartbeat(self, beat: dict[str, Any]) -> None:
        now = time.monotonic()
        totals_of = getattr(self.metrics, "totals", None)
        totals: dict[str, int] = totals_of() if totals_of else {}
        dt = max(now - self.last_at, 1e-3)
        rates = {
            n: round((v - self.last_totals.get(n, 0)) / dt, 2)
            for n, v in totals.items()
            if not n.startswith("warnings.")
        }
        self.last_totals, self.last_at = totals, now
        beat.update(
            kind=self.kind,
            name=self.name,
            pid=os.getpid(),
            host=socket.gethostname(),
            started=self.started,
            at=now_ms(),
            interval_s=self.settings.heartbeat_interval,
            totals=totals,
            rates=rates,
            warnings=sorted(n for n, a in self.alarms.items() if a.on),
            windows=[w.label for w in self.settings.windows],
            longest_ms=self.settings.longest_ms,
        )
        if self.figures is not None:
            beat["figures"] = self.figures()
        ttl_ms = max(1000, int(self.settings.heartbeat_interval * 3000))
        self.client.set(self.key, json.dumps(beat, separators=(",", ":")), px=ttl_ms)

    def forget(self) -> None:
        """A clean stop removes the heartbeat at once instead of letting it expire."""
        try:
            self.client.delete(self.key)
        except redis.RedisError:
            pass


def start(
    service: Any,
    client: Any,
    settings: Settings,
    metrics: Metrics,
    kind: str,
    name: str,
    *,
    pool_utilisation: Callable[[], float] | None = None,
    figures: Callable[[], dict[str, Any]] | None = None,
) -> Observer:
    """Spawn heartbeat + probes, the loop probe and the metrics flusher under ``service``.

    ``pool_utilisation`` returns the busy fraction (0..1) of the process's
    worker pool; ``figures`` adds process-specific values to the heartbeat.
    """
    loop = LoopProbe(pool_utilisation)
    observer = Observer(client, settings, metrics, kind, name, loop, figures)
    service.spawn("observe", observer.run, service)
    service.spawn("loop-probe", loop.run, service.stopping)
    service.spawn("metrics-flush", run_flusher, service, metrics, settings.metrics_interval)
    log.info(
        "observing %s",
        kv(kind=kind, name=name, heartbeat=observer.key, interval_s=settings.heartbeat_interval),
    )
    return observer
