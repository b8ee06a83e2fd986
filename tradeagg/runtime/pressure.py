"""Redis refusing writes, seen by one process: counted, warned once a minute, cleared.

Every part of a process (each shard consumer, the reclaimer, the bridge)
reports its refused writes here, so a full Redis gives one WARNING a minute
per process, not one per shard and attempt. Out of memory is backpressure,
not an error: ``warnings.redis_oom`` counts each refused attempt and the
warning clears by itself with the first accepted write. Other refusals
(READONLY, BUSY, MOVED, a lost connection...) go to ``warnings.redis_refused``.
"""

from __future__ import annotations

from tradeagg.observe.heartbeat import Alarm
from tradeagg.observe.metrics import Metrics
from tradeagg.store.refusal import refusal

REPEAT_S = 60.0


class Pressure:
    """The refusal alarms of one process."""

    def __init__(self, metrics: Metrics, repeat_s: float = REPEAT_S) -> None:
        self.metrics = metrics
        self.oom = Alarm("redis_oom", metrics, repeat_s)
        self.other = Alarm("redis_refused", metrics, repeat_s)

    @property
    def on(self) -> bool:
        return self.oom.on or self.other.on

    def refused(self, who: str, exc: BaseException) -> None:
        """One refused attempt by ``who`` (e.g. ``shard=3 apply``)."""
        code = refusal(exc) or type(exc).__name__
        alarm = self.oom if code == "OOM" else self.other
        alarm.check(True, code=code, by=who, detail=str(exc)[:160])

    def accepted(self) -> None:
        """A write went through: any standing refusal warning clears."""
        if self.oom.on:
            self.oom.check(False)
        if self.other.on:
            self.other.check(False)
