"""Metrics: counters, timers and gauges, aggregated in process, flushed to StatsD.

Code calls ``incr``/``timing``/``gauge`` on a Metrics object passed in; the
null implementation (unit tests) does nothing. ``StatsdMetrics`` adds counters
up, keeps a bounded sample of each timer and the last value of each gauge, and
sends them in batched UDP packets every ``TRADEAGG_METRICS_INTERVAL`` seconds,
so a trade costs a dict update, not a UDP packet.

Callers run both in greenlets and on the native threads of gevent's threadpool
(Kafka callbacks), so the aggregation lock is an *unpatched* lock: a gevent
lock is not safe across native threads, and the critical sections are a few
dict operations, too short to hold up the event loop.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Protocol

import gevent
import statsd
from gevent import monkey

from tradeagg.errors import ConfigError
from tradeagg.logs import kv
from tradeagg.observe.catalogue import COUNTERS
from tradeagg.settings import Settings

log = logging.getLogger("tradeagg.metrics")

_native_lock = monkey.get_original("_thread", "allocate_lock")
MAX_SAMPLES = 200  # timer samples kept per name per interval; beyond, a uniform reservoir
MAX_UDP = 1432  # bytes per packet: fits an Ethernet frame; StatsD reads one line per metric


class Metrics(Protocol):
    def incr(self, name: str, value: int = 1) -> None: ...

    def timing(self, name: str, ms: float) -> None: ...

    def gauge(self, name: str, value: float) -> None: ...

    def flush(self) -> None: ...


class NullMetrics:
    """Metrics off."""

    def incr(self, name: str, value: int = 1) -> None:
        pass

    def timing(self, name: str, ms: float) -> None:
        pass

    def gauge(self, name: str, value: float) -> None:
        pass

    def flush(self) -> None:
        pass


class MemoryMetrics:
    """Keeps every figure in memory: for tests, ``stats`` and bench."""

    def __init__(self) -> None:
        self._lock = _native_lock()
        self.counters: dict[str, int] = {}
        self.timings: dict[str, list[float]] = {}
        self.gauges: dict[str, float] = {}

    def incr(self, name: str, value: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + value

    def timing(self, name: str, ms: float) -> None:
        with self._lock:
            self.timings.setdefault(name, []).append(ms)

    def gauge(self, name: str, value: float) -> None:
        with self._lock:
            self.gauges[name] = value

    def flush(self) -> None:
        pass

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)


class TotalsMetrics(NullMetrics):
    """StatsD off, but counters still add up for heartbeats (``tradeagg stats`` rates)."""

    def __init__(self) -> None:
        self._lock = _native_lock()
        self._totals: dict[str, int] = {}

    def incr(self, name: str, value: int = 1) -> None:
        with self._lock:
            self._totals[name] = self._totals.get(name, 0) + value

    def totals(self) -> dict[str, int]:
        """Counters since the process started."""
        with self._lock:
            return dict(self._totals)


class _Timer:
    """Samples of one timer in one interval: all of them up to MAX_SAMPLES, then a reservoir."""

    __slots__ = ("seen", "samples")

    def __init__(self) -> None:
        self.seen = 0
        self.samples: list[float] = []

    def add(self, ms: float) -> None:
        self.seen += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(ms)
        else:
            slot = random.randrange(self.seen)
            if slot < MAX_SAMPLES:
                self.samples[slot] = ms


class StatsdMetrics(TotalsMetrics):
    """Aggregates in process; ``flush()`` sends one interval's figures in batched packets.

    Counters go out as their interval sum (``name:N|c``), every ``declared``
    counter too, as 0 when nothing was counted, so its series exists before its
    first event (see observe/catalogue.py); gauges as their last
    value (``name:V|g``), timers as their samples; when more than MAX_SAMPLES
    arrived, each kept sample carries the sample rate (``name:T|ms|@R``) so
    StatsD still derives the true count and rate.
    """

    def __init__(
        self,
        host: str,
        port: int,
        prefix: str = "",
        maxudpsize: int = MAX_UDP,
        declared: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.declared = declared
        try:
            self.client = statsd.StatsClient(
                host, port, prefix=prefix or None, maxudpsize=maxudpsize
            )
        except (OSError, UnicodeError) as exc:
            raise ConfigError(f"STATSD_HOST={host!r} STATSD_PORT={port}: {exc}") from None
        self._counters: dict[str, int] = {}
        self._timers: dict[str, _Timer] = {}
        self._gauges: dict[str, float] = {}

    def incr(self, name: str, value: int = 1) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + value
            self._totals[name] = self._totals.get(name, 0) + value

    def timing(self, name: str, ms: float) -> None:
        with self._lock:
            timer = self._timers.get(name)
            if timer is None:
                timer = self._timers[name] = _Timer()
            timer.add(ms)

    def gauge(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def take(self) -> tuple[dict[str, int], dict[str, _Timer], dict[str, float]]:
        """This interval's figures, leaving empty ones for the next."""
        with self._lock:
            taken = self._counters, self._timers, self._gauges
            self._counters, self._timers, self._gauges = {}, {}, {}
        return taken

    def flush(self) -> None:
        counters, timers, gauges = self.take()
        for name in self.declared:
            counters.setdefault(name, 0)
        if not (counters or timers or gauges):
            return
        pipe = self.client.pipeline()
        for name, count in counters.items():
            pipe.incr(name, count)
        for name, value in gauges.items():
            pipe.gauge(name, value)
        for name, timer in timers.items():
            rate = len(timer.samples) / timer.seen
            suffix = "" if rate >= 1 else f"|@{rate:.6g}"
            for ms in timer.samples:
                # the client's own rate argument would drop samples at random: we sampled already
                pipe._send_stat(name, f"{ms:.3f}|ms{suffix}", 1)
        try:
            pipe.send()
        except OSError as exc:  # metrics must never take the process down
            log.warning("statsd send failed %s", kv(error=type(exc).__name__, detail=exc))

    def close(self) -> None:
        self.client.close()


def metrics_from_settings(settings: Settings) -> Metrics:
    """StatsD when STATSD_HOST is set; else counters kept for heartbeats only."""
    if not settings.statsd_host:
        return TotalsMetrics()
    return StatsdMetrics(
        settings.statsd_host, settings.statsd_port, settings.statsd_prefix, declared=COUNTERS
    )


def run_flusher(service: Any, metrics: Metrics, interval: float) -> None:
    """Flush every ``interval`` seconds; after stop, until the other parts are done.

    Parts still drain (and count) after SIGTERM, so the last flush waits for
    them; if the service kills this greenlet at its deadline, ``finally``
    still sends what was counted.
    """
    try:
        while not service.sleep(interval):
            metrics.flush()
        due = time.monotonic() + interval
        while len(service.group) > 1:
            gevent.sleep(0.05)
            if time.monotonic() >= due:
                metrics.flush()
                due += interval
    finally:
        metrics.flush()


__all__ = [
    "Metrics",
    "NullMetrics",
    "MemoryMetrics",
    "TotalsMetrics",
    "StatsdMetrics",
    "metrics_from_settings",
    "run_flusher",
]
