"""Named greenlets in one group, one stop event, signals that drain.

Every long-running part of a process (a shard reader, the janitor, the Kafka
loop) runs as a supervised greenlet: if it raises, the error is logged with
its name, counted, and the greenlet restarted after a growing pause. SIGTERM
and SIGINT set the stop event; parts finish what they hold and return; the
process exits 0 once they have, or kills what is left at the deadline.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import gevent.pool

from tradeagg.logs import kv
from tradeagg.observe.metrics import Metrics, NullMetrics

log = logging.getLogger("tradeagg.service")


class Service:
    def __init__(self, name: str, metrics: Metrics | None = None, drain_s: float = 25.0) -> None:
        self.name = name
        self.metrics = metrics or NullMetrics()
        self.drain_s = drain_s
        self.stopping = gevent.event.Event()
        self.group = gevent.pool.Group()

    def spawn(self, part: str, func: Callable[..., Any], *args: Any, restart: bool = True) -> None:
        """Run ``func(*args)`` as part ``part``; restart it if it raises (unless stopping)."""

        def supervised() -> None:
            delay = 0.1
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    func(*args)
                    return
                except gevent.GreenletExit:
                    return
                except Exception as exc:  # supervised: any crash is logged and restarted
                    self.metrics.incr("greenlet.crashed")
                    log.error(
                        "part crashed %s",
                        kv(
                            service=self.name,
                            part=part,
                            error=type(exc).__name__,
                            detail=str(exc)[:300],
                            restart_in_s=f"{delay:.1f}",
                        ),
                        exc_info=log.isEnabledFor(logging.DEBUG),
                    )
                    if not restart:
                        return
                    if time.monotonic() - started > 60:
                        delay = 0.1  # it ran fine for a while: a new incident starts fast
                    self.stopping.wait(delay)
                    delay = min(delay * 2, 10.0)

        g = gevent.Greenlet(supervised)
        g.name = part
        self.group.start(g)

    def stop(self, *_: Any) -> None:
        if not self.stopping.is_set():
            log.info("stopping %s", kv(service=self.name))
            self.stopping.set()

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(sig, self.stop)

    def run(self) -> int:
        """Block until stopped and drained; returns the exit code (0)."""
        self.install_signals()
        self.stopping.wait()
        self.group.join(timeout=self.drain_s)
        if len(self.group):
            log.warning(
                "parts still running at the deadline, killed %s",
                kv(service=self.name, parts=",".join(g.name for g in self.group)),
            )
            self.group.kill(timeout=2)
        return 0

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True if the process is stopping."""
        return self.stopping.wait(seconds)
