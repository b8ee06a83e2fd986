"""Kafka -> validate -> pipelined XADD to the shard streams -> commit offsets.

One loop, one batch at a time: fetch what the consumer has (librdkafka calls
run on gevent's threadpool), validate every element, XADD the valid trades
packed per shard plus the dead letters in one pipeline, and only once Redis
has acknowledged, commit the batch's offsets synchronously. So at every
``consume`` call (the only place rebalance callbacks fire) nothing is held
uncommitted-but-written: a revocation has nothing to flush, a crash replays
at most one batch, and the engine drops the duplicates (at-least-once).

Backpressure: the backlog is what group ``workers`` has not acknowledged yet
(``Backlog.unacked`` of ``tradeagg.store.stream``, summed over the shards).
Above ``max_backlog`` entries the assigned partitions are paused, so Kafka
keeps the data; below 80% of it they resume.

Redis down or refusing writes (out of memory, read-only, ...): the write is
retried with exponential backoff until it works or the process stops (then
nothing is committed and Kafka redelivers). Meanwhile the assigned partitions
are paused and the pauses are spent polling, so the consumer stays in its
group past ``max.poll.interval.ms``; the first accepted write resumes them.
Out of memory is backpressure: counted in ``warnings.redis_oom``, one WARNING
a minute, no ERROR per attempt. Broker
down: librdkafka reconnects by itself; its errors reach ``errors`` through the
consumer's ``error_cb`` and are logged from the loop, rate-limited per code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from tradeagg.clock import now_ms
from tradeagg.contract.trade import Trade
from tradeagg.errors import BrokerError
from tradeagg.logs import Throttle, kv, metric_segment, process_name
from tradeagg.observe.metrics import Metrics
from tradeagg.runtime import intake, retry
from tradeagg.runtime.pressure import Pressure
from tradeagg.settings import Settings
from tradeagg.store.refusal import refusal
from tradeagg.store.replication import Replication, ReplicationLag
from tradeagg.store.stream import ShardStream, unacked
from tradeagg.store.streams import pack

log = logging.getLogger("tradeagg.bridge")

BATCH_MESSAGES = 2_000
POLL_S = 0.2
BACKLOG_EVERY_S = 0.5
RESUME_FRACTION = 0.8
INVALID_BURST = 5  # "invalid input" lines per window; the rest are counted
INVALID_WINDOW_S = 10.0

Blocking = Callable[..., Any]


def fetch(consumer: Any, n: int, timeout: float) -> list[Message]:
    """Up to ``n`` messages: wait for the first only, then take what is already queued.

    (``consume(n, t)`` waits the whole ``t`` unless ``n`` arrive: latency.)
    """
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(n - 1, 0)]


class Bridge:
    """The Kafka -> shard streams loop; ``run()`` until ``stopping()``."""

    def __init__(
        self,
        consumer: Any,
        client: Any,
        settings: Settings,
        metrics: Metrics,
        stopping: Callable[[], bool],
        blocking: Blocking,
        clock: Callable[[], int] = now_ms,
        errors: list[KafkaError] | None = None,
    ) -> None:
        self.consumer = consumer
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.stopping = stopping
        self.blocking = blocking
        self.clock = clock
        self.paused = False  # over max_backlog
        self.refused = False  # Redis refuses writes: partitions paused until one goes through
        self.pressure = Pressure(metrics)
        self.backlog = 0
        self._backlog_due = 0.0
        self._events: list[tuple[str, list[tuple[str, int]]]] = []  # filled by callbacks
        self._error_logged: dict[int, float] = {}
        self._invalid_throttle = Throttle(INVALID_BURST, INVALID_WINDOW_S)
        self.streams = [
            ShardStream(client, shard, settings.dead_letter_max) for shard in range(settings.shards)
        ]
        self.replication = Replication(
            client, settings.redis_wait_replicas, settings.redis_wait_timeout_ms
        )
        # the consumer's error_cb appends here (librdkafka's thread); step() logs them
        self.errors: list[KafkaError] = [] if errors is None else errors

    # -- rebalance callbacks: they run on librdkafka's thread, so they only take notes
    def _on_assign(self, _consumer: Any, parts: list[TopicPartition]) -> None:
        self._events.append(("assigned", [(p.topic, p.partition) for p in parts]))

    def _on_revoke(self, _consumer: Any, parts: list[TopicPartition]) -> None:
        self._events.append(("revoked", [(p.topic, p.partition) for p in parts]))

    def run(self) -> None:
        """Consume until stopping; then close the consumer (leaves the group at once)."""
        topic = self.settings.topic
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("bridge consuming %s", kv(topic=topic, group=self.settings.group))
        try:
            while not self.stopping():
                self.step()
        finally:
            self.blocking(self.consumer.close)
            log.info("bridge consumer closed %s", kv(topic=topic))

    def step(self) -> int:
        """One fetch-write-commit round; returns the number of messages handled."""
        if time.monotonic() >= self._backlog_due:
            self.check_backlog()
        msgs = self.blocking(fetch, self.consumer, BATCH_MESSAGES, POLL_S)
        self._log_events()
        self._report_suppressed()
        while self.errors:
            self._kafka_error(self.errors.pop(0))
        if msgs:
            self.handle(msgs)
        return len(msgs)

    def _log_events(self) -> None:
        while self._events:
            what, parts = self._events.pop(0)
            log.info("partitions %s %s", what, kv(partitions=_parts(parts)))
            if what == "assigned" and (self.paused or self.refused):
                self._pause()

    # -- one batch ---------------------------------------------------------------------
    def handle(self, msgs: list[Message]) -> None:
        """Validate, write and commit one batch; no message content can make this raise.

        Each message gives its valid trades and at most one dead letter
        (``intake.take``); an unexpected exception while handling one message
        dead-letters that message (``intake.failed``) and the batch goes on, so
        its offset is committed past it and the partition never stalls on it.
        """
        m = self.metrics
        trades: list[Trade] = []
        dead: list[tuple[int, dict[str, str]]] = []
        offsets: dict[tuple[str, int], tuple[int, int]] = {}
        now = self.clock()
        skew, shards = self.settings.max_skew_ms, self.settings.shards
        received = invalid = invalid_msgs = failed = n_ok = 0
        self._report_suppressed()
        t0 = time.perf_counter()
        for msg in msgs:
            err = msg.error()
            if err is not None:
                self._kafka_error(err)
                continue
            n_ok += 1
            where = (msg.topic(), msg.partition(), msg.offset())
            topic, part, off = where
            lo, _hi = offsets.get((topic, part), (off, off))
            offsets[(topic, part)] = (min(lo, off), off)
            value = msg.value()
            try:
                got = intake.take(value, where, now, skew, shards)
            except Exception as exc:  # belt and braces: no message may stop a partition
                got = intake.failed(value, where, exc, shards)
                log.error(
                    "message handling failed, dead-lettered %s",
                    kv(
                        topic=topic,
                        partition=part,
                        offset=off,
                        error=type(exc).__name__,
                        detail=intake.clean(str(exc)[:200]),
                    ),
                )
            trades.extend(got.trades)
            received += got.elements
            invalid += got.rejected
            invalid_msgs += got.whole
            failed += got.failed
            if got.dead is not None:
                dead.append(got.dead)
                if not got.failed:
                    self._invalid_log(where, got)
        parse_ms = (time.perf_counter() - t0) * 1000
        if n_ok:
            m.timing("bridge.parse_per_message", parse_ms / n_ok)
        m.incr("messages.received", n_ok)
        m.incr("trades.received", received)
        m.incr("trades.valid", len(trades))
        m.incr("trades.invalid", invalid)
        m.incr("messages.invalid", invalid_msgs)
        m.incr("messages.failed", failed)
        m.incr("deadletters", len(dead))
        if not offsets:
            return
        if not self.write(trades, dead, _src(offsets)):
            return  # stopping while Redis is down: commit nothing, Kafka redelivers
        self.commit(offsets)

    def _invalid_log(self, where: tuple[str, int, int], got: intake.Intake) -> None:
        """One WARNING per bad message, at most ``INVALID_BURST`` per window; the rest counted."""
        suppressed = self._invalid_throttle.admit()
        if suppressed is None:
            return
        topic, part, off = where
        log.warning(
            "invalid input %s",
            kv(
                topic=topic,
                partition=part,
                offset=off,
                invalid=got.rejected or 1,
                elements=got.elements,
                reason=intake.clean(got.reason[:200]),
                suppressed_before=suppressed,
            ),
        )

    def _report_suppressed(self) -> None:
        n = self._invalid_throttle.overdue()
        if n:
            log.warning(
                "invalid input lines suppressed %s",
                kv(suppressed=n, window_s=self._invalid_throttle.window_s),
            )

    def write(self, trades: list[Trade], dead: list[tuple[int, dict[str, str]]], src: str) -> bool:
        """XADD trades and dead letters in one pipeline, retried until done or stopping."""
        s = self.settings
        batches = [
            (self.stream(shard), chunk)
            for shard, chunks in pack(trades, s).items()
            for chunk in chunks
        ]
        letters = [(self.stream(shard), fields) for shard, fields in dead]
        if not batches and not letters:
            return True
        t0 = time.perf_counter()

        try:
            for attempt in retry.policy(
                log,
                "bridge.write",
                until=self.stopping,
                before_sleep=self._redis_retry_log,
                sleep=self._wait_polling,
            ):
                with attempt:
                    pipe = self.client.pipeline(transaction=False)  # execute() empties it
                    for stream, chunk in batches:
                        stream.add(chunk, src, pipe)
                    for stream, fields in letters:
                        stream.dead_letter(fields, pipe)
                    pipe.execute()
                    # before any offset commit: the entries on N replicas. A lag waits in
                    # place; any other error re-sends the batch (copies are applied once)
                    if not self.replication.confirm_patiently(
                        self.stopping, self._wait_polling, self._lagging
                    ):
                        raise ReplicationLag("stopping before the replicas caught up")
        except retry.RETRYABLE:
            log.warning("stopping with Redis down: batch not committed %s", kv(src=src))
            return False
        if self.refused:
            self._accepted()
        self.metrics.timing("bridge.xadd", (time.perf_counter() - t0) * 1000)
        self.metrics.incr("entries.written", len(batches))
        return True

    def stream(self, shard: int) -> ShardStream:
        return self.streams[shard]

    def _lagging(self, exc: Exception) -> None:
        self.metrics.incr("redis.wait_timeouts")
        log.warning("replicas behind, offsets held %s", kv(detail=exc))

    def _redis_retry_log(self, state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.metrics.incr("redis.errors")
        if exc is not None and refusal(exc) is not None:
            self._refused(exc)
            if refusal(exc) == "OOM":
                return  # backpressure: Pressure's one WARNING a minute says it
        log.error(
            "redis write failed, retrying %s",
            kv(
                what="bridge.write",
                attempt=state.attempt_number,
                error=type(exc).__name__,
                detail=str(exc)[:200],
            ),
        )

    # -- Redis refusing writes: pause, stay in the group, resume ------------------------
    def _refused(self, exc: BaseException) -> None:
        """A refused write: pause the assigned partitions (Kafka keeps the data)."""
        self.pressure.refused("bridge write", exc)
        if not self.refused:
            self.refused = True
            self._pause()
            self.metrics.gauge(self._paused_gauge(), 1)
            log.info("redis refuses writes, partitions paused %s", kv(code=refusal(exc)))

    def _accepted(self) -> None:
        self.refused = False
        self.pressure.accepted()
        if not self.paused:
            parts = self.consumer.assignment()
            if parts:
                self.consumer.resume(parts)
            self.metrics.gauge(self._paused_gauge(), 0)
        log.info("redis accepts writes again, partitions resumed")

    def _wait_polling(self, seconds: float) -> None:
        """The retry pause, spent polling: the consumer stays in its group.

        Partitions are paused, so a poll serves rebalances and returns nothing
        new; a message fetched before the pause is sought back, to be read
        again after the resume.
        """
        if not self.refused:
            time.sleep(seconds)
            return
        msg = self.blocking(self.consumer.poll, seconds)
        self._log_events()  # a partition assigned meanwhile is paused too
        if msg is not None and msg.error() is None:
            where = TopicPartition(msg.topic(), msg.partition(), msg.offset())
            try:
                self.consumer.seek(where)
            except KafkaException as exc:  # restarting re-reads from the committed offsets
                raise BrokerError(f"cannot seek back while paused: {exc}") from None
        elif msg is not None:
            self._kafka_error(msg.error())

    def commit(self, offsets: dict[tuple[str, int], tuple[int, int]]) -> None:
        """Commit next offsets synchronously; a failure only means a replay (duplicates)."""
        parts = [TopicPartition(t, p, hi + 1) for (t, p), (_lo, hi) in offsets.items()]
        t0 = time.perf_counter()
        try:
            self.blocking(self.consumer.commit, offsets=parts, asynchronous=False)
        except KafkaException as exc:
            self.metrics.incr("kafka.commit_failed")
            log.warning("offset commit failed, batch will be replayed %s", kv(error=exc.args[0]))
            return
        self.metrics.timing("bridge.commit", (time.perf_counter() - t0) * 1000)

    def _kafka_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        self.metrics.incr("kafka.errors")
        if err.fatal():
            raise BrokerError(f"fatal Kafka error: {err.str()}")
        last = self._error_logged.get(err.code(), 0.0)
        if time.monotonic() - last >= 5.0:
            self._error_logged[err.code()] = time.monotonic()
            log.warning("kafka error %s", kv(code=err.name(), detail=err.str()[:200]))

    # -- backpressure ------------------------------------------------------------------
    def check_backlog(self) -> None:
        """Measure the backlog; pause or resume the assigned partitions accordingly."""
        self._backlog_due = time.monotonic() + BACKLOG_EVERY_S / (2 if self.paused else 1)
        try:
            self.backlog = unacked(self.client, self.settings.shards)
        except redis.RedisError as exc:
            log.warning("backlog unknown %s", kv(error=type(exc).__name__, detail=str(exc)[:200]))
            return
        self.metrics.gauge("bridge.backlog", self.backlog)
        limit = self.settings.max_backlog
        if not self.paused and self.backlog > limit:
            self.paused = True
            self._pause()
            self.metrics.incr("bridge.paused")
            log.warning("backlog over limit, paused %s", kv(backlog=self.backlog, limit=limit))
        elif self.paused and self.backlog <= limit * RESUME_FRACTION:
            self.paused = False
            parts = self.consumer.assignment()
            if parts:
                self.consumer.resume(parts)
            log.info("backlog drained, resumed %s", kv(backlog=self.backlog, limit=limit))
        self.metrics.gauge(self._paused_gauge(), 1 if self.paused or self.refused else 0)

    def _paused_gauge(self) -> str:
        """One gauge per bridge process: ``bridge.paused.<process>``."""
        return f"bridge.paused.{metric_segment(process_name(self.settings.process_name))}"

    def _pause(self) -> None:
        parts = self.consumer.assignment()
        if parts:
            self.consumer.pause(parts)




def _src(offsets: dict[tuple[str, int], tuple[int, int]]) -> str:
    topics = {t for t, _ in offsets}
    text = ",".join(f"{p}:{lo}-{hi}" for (_t, p), (lo, hi) in sorted(offsets.items()))
    return (f"{topics.pop()}/" if len(topics) == 1 else "") + text[:200]


def _parts(parts: list[tuple[str, int]]) -> str:
    return ",".join(f"{t}/{p}" for t, p in parts) or "-"
