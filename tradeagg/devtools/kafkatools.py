"""The Kafka side of the tools (produce, demo, benchmarks): topics, messages, a producer.

``create_topic`` is the one place a topic is created (the service never
creates one: in production the topic is the operator's). ``encode`` turns
trades into contract JSON messages, one per trade keyed by token or one array
per block. ``Sender`` is a Producer that counts deliveries; its librdkafka
waits run through ``blocking`` (the hub's threadpool by default).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tradeagg.contract.trade import Trade
from tradeagg.devtools.synthetic import to_message
from tradeagg.errors import BrokerError, ConfigError, TradeaggError
from tradeagg.runtime.hub import on_hub_threadpool
from tradeagg.runtime.kafkaconf import brokers, common, producer_config, scrub
from tradeagg.settings import Settings

Message = tuple[bytes | None, bytes, int]  # key, value, trades in it
Blocking = Callable[..., Any]
MAX_ARRAY = 1_000  # trades per array message: ~400 KB, well under the 1 MiB limit
CONNECT_S = 10.0  # at most this long to reach a broker before giving up
BROKER_FATAL = (
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._AUTHENTICATION,
    KafkaError._RESOLVE,
    KafkaError._SSL,
)
TOPIC_FATAL = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED)


def create_topic(
    settings: Settings,
    name: str,
    partitions: int = 4,
    client_id: str = "tools",
    blocking: Blocking = on_hub_threadpool,
) -> None:
    """Create topic ``name`` (replication 1) on the brokers of ``settings``; waits up to 30 s."""
    admin = AdminClient(common(settings, client_id))
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    try:
        for future in futures.values():
            blocking(future.result, 30)
    except Exception as exc:  # KafkaException, or a timeout: the caller cannot go on
        raise TradeaggError(f"creating topic {name}: {exc}") from None


def encode(trades: list[Trade], per_block: bool) -> Iterator[Message]:
    """Messages of ``trades``: one per trade keyed by token, or one array per block."""
    if not per_block:
        for t in trades:
            yield t.token.encode(), json.dumps(to_message(t), separators=(",", ":")).encode(), 1
        return
    i = 0
    while i < len(trades):
        j = i
        while j < len(trades) and j - i < MAX_ARRAY and trades[j].block == trades[i].block:
            j += 1
        body = [to_message(t) for t in trades[i:j]]
        yield None, json.dumps(body, separators=(",", ":")).encode(), j - i
        i = j


class Sender:
    """A Producer with delivery accounting; librdkafka waits run on the hub threadpool."""

    def __init__(self, settings: Settings, blocking: Blocking = on_hub_threadpool) -> None:
        self.settings = settings
        self.broker_errors: list[Any] = []  # error_cb: librdkafka thread, append only
        conf = {**producer_config(settings), "error_cb": self.broker_errors.append}
        try:
            self.producer = Producer(conf)
        except KafkaException as exc:
            raise ConfigError(
                scrub(f"Kafka producer configuration: {exc.args[0]}", settings)
            ) from None
        self.topic = settings.topic
        self.blocking = blocking
        self.delivered = self.failed = self.trades = 0
        self.errors: list[str] = []

    def _done(self, err: Any, msg: Any) -> None:  # librdkafka thread: count only
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(str(err))

    def connect(self, timeout: float = CONNECT_S) -> None:
        """Fail fast, in one line, when no broker answers or the topic is not there."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            meta, failure = self.blocking(self._metadata)
            self.producer.poll(0)  # serves error_cb
            if failure is not None:
                last = failure
            else:
                topic = meta.topics.get(self.topic)
                err = topic.error if topic is not None else None
                if err is None:
                    return
                if err.code() in TOPIC_FATAL:
                    raise BrokerError(
                        f"topic {self.topic}: {err.str()} (create it first; on Heroku "
                        "basic plans: heroku kafka:topics:create, KAFKA_PREFIX is added)"
                    )
                last = err.str()
            fatal = [e for e in self.broker_errors if e.code() in BROKER_FATAL]
            if fatal:
                last = fatal[-1].str()
                break
        where = brokers(self.settings)[0]
        raise BrokerError(scrub(f"Kafka at {where} unreachable: {last}", self.settings))

    def _metadata(self) -> tuple[Any, str | None]:
        """The topic's metadata, or why not (raising on the threadpool would print a traceback)."""
        try:
            return self.producer.list_topics(self.topic, timeout=1.0), None
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            return None, err.str() if isinstance(err, KafkaError) else str(exc)

    def send(self, messages: Iterable[Message]) -> None:
        for key, value, n in messages:
            while True:
                try:
                    self.producer.produce(self.topic, value=value, key=key, on_delivery=self._done)
                    break
                except BufferError:
                    self.blocking(self.producer.poll, 0.05)
            self.trades += n
        self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for delivery reports; returns the messages still undelivered."""
        return int(self.blocking(self.producer.flush, timeout))
