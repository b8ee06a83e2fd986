"""The change feed (CONTRACT §6): announce tokens whose aggregates changed.

The shard consumers and the janitor call ``applied``/``refreshed`` with the
results of Lua calls that have returned, i.e. committed: an announcement is
never newer than the state a reader of it finds. Those calls only note the
token (no I/O); the feed's own greenlet (``run``) announces, so a slow or
failing feed never holds up an XACK.

Coalescing is per token and leading-edge: a token not announced during the
last ``1 / TRADEAGG_FEED_HZ`` s is announced at once, otherwise when that
interval has passed, with the newest ``last_update`` seen meanwhile. A token
changing 1,000 times a second is so announced at most ``feed_hz`` times a
second by each worker process. Both maps are bounded by the number of tokens
changed during one interval.

Each announcement is an entry ``token``, ``at`` (wall ms of the
announcement), ``last_update`` in ``tradeagg:{sN}:changes``, trimmed exactly
to ``feed_maxlen`` entries; with ``TRADEAGG_OUTPUT_TOPIC`` set, the token's
``show --json`` object (read after the commit) also goes to Kafka, keyed by
token.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import gevent.event

from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.engine.apply import TokenResult
from tradeagg.engine.rank import Ranker
from tradeagg.engine.viewjson import view_json
from tradeagg.logs import kv
from tradeagg.observe.metrics import Metrics
from tradeagg.runtime import retry
from tradeagg.runtime.hub import on_hub_threadpool
from tradeagg.settings import Settings

log = logging.getLogger("tradeagg.feed")

IDLE_WAKE_S = 1.0


NOTED_MAX = 200_000  # tokens whose last noted last_update is remembered (oldest forgotten)


class ChangeFeed:
    """Per worker process: coalesces committed changes and announces them."""

    def __init__(
        self,
        client: Any,
        settings: Settings,
        metrics: Metrics,
        producer: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.producer = producer
        self.topic = settings.kafka_prefix + settings.output_topic
        self.clock = clock
        self.interval = 1.0 / settings.feed_hz
        self.pending: dict[str, int] = {}  # token -> newest committed last_update not announced
        # token -> the newest last_update noted: an apply that did not move it changed nothing
        self.noted: OrderedDict[str, int] = OrderedDict()
        self.sent: dict[str, float] = {}  # token -> clock() of its last announcement
        self.wake = gevent.event.Event()
        self.delivery_errors = 0

    def applied(self, results: Iterable[TokenResult]) -> None:
        """Tokens an apply just committed (the consumer's hook).

        Not only those that took new trades: a call of duplicates or late trades
        still slides the windows to its instant and moves last_update, and a
        reader must be told of that state too (CONTRACT §6). A result whose
        last_update did not move changed nothing and is not announced.
        """
        self._note(results)

    def refreshed(self, results: Iterable[TokenResult]) -> None:
        """Tokens the janitor just slid forward (their windows may have lost trades)."""
        self._note(results)

    def _note(self, results: Iterable[TokenResult]) -> None:
        for r in results:
            if r.failed or r.last_update is None:
                continue
            if r.last_update <= self.noted.get(r.token, -1):
                continue
            self.noted[r.token] = r.last_update
            self.noted.move_to_end(r.token)
            if len(self.noted) > NOTED_MAX:
                self.noted.popitem(last=False)
            self.pending[r.token] = max(r.last_update, self.pending.get(r.token, 0))
        if self.pending:
            self.wake.set()

    def due(self) -> tuple[list[tuple[str, int]], float | None]:
        """Pop the tokens that may be announced now; also the seconds until the next is due."""
        now = self.clock()
        ready: list[tuple[str, int]] = []
        wait: float | None = None
        for token, last_update in list(self.pending.items()):
            left = self.sent.get(token, -1e18) + self.interval - now
            if left <= 0:
                ready.append((token, last_update))
                del self.pending[token]
                self.sent[token] = now
            else:
                wait = left if wait is None else min(wait, left)
        if len(self.sent) > 2 * len(ready) + 64:  # forget tokens whose interval is over
            cut = now - self.interval
            self.sent = {t: s for t, s in self.sent.items() if s > cut or t in self.pending}
        return ready, wait

    def announce(self, ready: list[tuple[str, int]]) -> None:
        """XADD each announcement to its shard's change stream (one pipeline); then Kafka."""
        if not ready:
            return
        at = now_ms()
        pipe = self.client.pipeline(transaction=False)
        for token, last_update in ready:
            pipe.xadd(
                keys.changes(keys.shard_of(token, self.settings.shards)),
                {"token": token, "at": at, "last_update": last_update},
                maxlen=self.settings.feed_maxlen,
                approximate=False,
            )
        pipe.execute()
        self.metrics.incr("feed.announced", len(ready))
        if self.producer is not None and self.settings.output_topic:
            self.publish([token for token, _ in ready])

    def publish(self, tokens: list[str]) -> None:
        """The tokens' ``show --json`` objects to the output topic, keyed by token."""
        _, views = Ranker(self.client, self.settings).read_all(tokens, None)
        for view in views:
            try:
                self.producer.produce(
                    self.topic,
                    key=view.token.encode(),
                    value=view_json(view).encode(),
                    on_delivery=self._delivered,
                )
            except BufferError:
                self.metrics.incr("feed.kafka_dropped")
                log.warning("output queue full, update dropped %s", kv(token=view.token))
            self.producer.poll(0)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.delivery_errors += 1
            self.metrics.incr("feed.kafka_errors")

    def flush_once(self) -> float | None:
        """Announce what is due; the seconds until the next token is due (None: nothing waits)."""
        ready, wait = self.due()
        try:
            self.announce(ready)
        except Exception:
            for token, last_update in ready:  # not announced: try again on the next pass
                self.pending[token] = max(last_update, self.pending.get(token, 0))
                self.sent.pop(token, None)
            raise
        return wait

    def run(self, stopping: Callable[[], bool]) -> None:
        """Announce until stopping; Redis failures are retried by the one retry policy."""
        log.info("change feed started %s", kv(hz=self.settings.feed_hz, topic=self.topic or "-"))
        while not stopping():
            self.wake.clear()
            wait = retry.call(log, "feed.announce", self.flush_once, until=stopping)
            if self.producer is not None:
                self.producer.poll(0)
            self.wake.wait(IDLE_WAKE_S if wait is None else max(wait, 0.001))
        self.flush_once_quietly()

    def flush_once_quietly(self) -> None:
        """At shutdown: announce every pending token, and hand Kafka what it holds (bounded)."""
        ready, self.pending = list(self.pending.items()), {}
        try:
            self.announce(ready)
        except Exception as exc:  # shutting down: say so, do not hide the stop
            log.warning("last announcements lost %s", kv(error=str(exc)[:200]))
        if self.producer is not None:
            on_hub_threadpool(self.producer.flush, 5)
