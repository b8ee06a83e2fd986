"""`tradeagg bridge`: Kafka -> Redis shard streams, until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from gevent import monkey

from tradeagg.errors import ConfigError
from tradeagg.logs import PROCESS, kv
from tradeagg.observe import heartbeat
from tradeagg.observe.metrics import metrics_from_settings
from tradeagg.runtime.bridge import Bridge
from tradeagg.runtime.hub import on_hub_threadpool
from tradeagg.runtime.kafkaconf import consumer_config, scrub
from tradeagg.runtime.service import Service
from tradeagg.settings import Settings, mask
from tradeagg.store.connection import BRIDGE_CONNECTIONS, check, connect

log = logging.getLogger("tradeagg.bridge")

EXAMPLES = """examples:
  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 REDIS_URL=redis://127.0.0.1:6379/0 tradeagg bridge
  KAFKA_URL=kafka+ssl://h1:9096,h2:9096 KAFKA_TRUSTED_CERT="$(cat ca.pem)" \\
    KAFKA_CLIENT_CERT="$(cat cert.pem)" KAFKA_CLIENT_CERT_KEY="$(cat key.pem)" \\
    KAFKA_PREFIX=fuzzy-123. tradeagg bridge
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bridge",
        help="Kafka -> Redis shard streams, until SIGTERM/SIGINT.",
        description="Consumes TRADEAGG_KAFKA_TOPIC in group TRADEAGG_KAFKA_GROUP (both with "
        "KAFKA_PREFIX; a new group starts at the earliest offset), validates every trade "
        "(see 'tradeagg append --help' for the message rules), writes valid trades to the shard streams and invalid input to the "
        "dead-letter streams, and commits offsets only after Redis acknowledged. Pauses "
        "consumption while the shard streams hold more than TRADEAGG_MAX_BACKLOG unacknowledged "
        "entries. SIGTERM/SIGINT: finishes the batch in hand, commits, exits 0.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not monkey.is_module_patched("socket"):
        log.warning("gevent has not patched socket: run through the tradeagg entry point")
    metrics = metrics_from_settings(settings)
    service = Service("bridge", metrics)
    client = connect(settings, max_connections=BRIDGE_CONNECTIONS, name="bridge")
    check(client)
    # error_cb runs on librdkafka's thread: it only appends; the loop logs, rate-limited
    kafka_errors: list[KafkaError] = []
    conf = {**consumer_config(settings), "error_cb": kafka_errors.append}

    def new_consumer() -> Consumer:
        try:
            return Consumer(conf)
        except KafkaException as exc:
            raise ConfigError(
                mask(scrub(f"Kafka consumer configuration: {exc.args[0]}", settings))
            ) from None

    consumers = [new_consumer()]  # a bad configuration exits 2 here, not in a restart loop
    current: list[Bridge] = []

    def loop() -> None:
        consumer = consumers.pop() if consumers else new_consumer()
        bridge = Bridge(
            consumer,
            client,
            settings,
            metrics,
            service.stopping.is_set,
            on_hub_threadpool,
            errors=kafka_errors,
        )
        current[:] = [bridge]
        bridge.run()

    def figures() -> dict[str, Any]:
        b = current[0] if current else None
        return {"paused": int(b.paused), "backlog": b.backlog} if b else {}

    service.spawn("kafka", loop)
    heartbeat.start(service, client, settings, metrics, "bridge", PROCESS, figures=figures)
    log.info("bridge started %s", kv(topic=settings.topic, group=settings.group))
    code = service.run()
    log.info("bridge stopped %s", kv(topic=settings.topic))
    return code
