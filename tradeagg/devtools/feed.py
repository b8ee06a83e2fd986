"""A synthetic trade feed paced to the wall clock, produced to Kafka (the demo's source).

Trades come from ``SyntheticFeed`` (Zipf popularity, bursts, pumps and dumps)
with block times that follow the wall clock, so the windows fill as they
would in production. Each trade is one contract JSON message keyed by its
token. ``tick()`` never blocks: ``produce`` only queues, ``poll(0)`` serves
delivery reports, and the report callback only counts (it runs inside
librdkafka's call). The final ``flush`` is the caller's, on a native thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from tradeagg.clock import now_ms
from tradeagg.contract.trade import Trade
from tradeagg.devtools.synthetic import SyntheticFeed, to_message

NowMs = Callable[[], int]


class PacedFeed:
    """Produces the trades whose block time has come, each ``tick()``."""

    def __init__(
        self,
        producer: Any,
        topic: str,
        rate: float,
        tokens: int,
        seed: int = 1,
        clock: NowMs = now_ms,
        keep_ms: int = 3_600_000,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.clock = clock
        self.source = SyntheticFeed(tokens=tokens, seed=seed, traders=max(100, tokens * 10))
        self._stream: Iterator[Trade] = self.source.stream(clock(), rate)
        self._next: Trade | None = None
        self.queued = 0
        self.delivered = 0
        self.failed = 0
        self.keep_ms = keep_ms
        self._by_ts: dict[int, int] = {}  # block time -> delivered trades (blocks: 400 ms)

    def _report(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed += 1
            return
        self.delivered += 1
        _kind, ts = msg.timestamp()
        self._by_ts[ts] = self._by_ts.get(ts, 0) + 1

    def tick(self) -> int:
        """Queue every trade due by now; serve delivery reports. Returns trades queued."""
        now = self.clock()
        n = 0
        while True:
            if self._next is None:
                self._next = next(self._stream)
            t = self._next
            if t.ts > now:
                break
            value = json.dumps(to_message(t), separators=(",", ":"))
            try:
                self.producer.produce(
                    self.topic, value=value, key=t.token, timestamp=t.ts, on_delivery=self._report
                )
            except BufferError:
                break  # the local queue is full: try again next tick
            self._next = None
            n += 1
        self.queued += n
        self.producer.poll(0)
        return n

    def delivered_since(self, since_ms: int) -> int:
        """Trades delivered to Kafka whose block time is after ``since_ms``.

        Compared with the trades the longest window holds, this tells how
        many trades are still in flight (delivered but not yet applied).
        """
        for ts in [ts for ts in self._by_ts if ts < since_ms - self.keep_ms]:
            del self._by_ts[ts]
        return sum(n for ts, n in self._by_ts.items() if ts > since_ms)
