"""Metrics: counters, timers and gauges, aggregated in process, flushed to StatsD.

Code calls ``incr``/``timing``/``gauge`` on a Metrics object passed in; the
null implementation (no STATSD_HOST, and unit tests) does nothing. The StatsD
implementation adds counters up and flushes them on an interval, so a trade
costs a dict update, not a UDP packet.
"""

from __future__ import annotations

import threading
from typing import Protocol


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
        self._lock = threading.Lock()
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
