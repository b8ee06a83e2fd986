"""`tradeagg worker`: consumer-group aggregation of every shard, plus the janitor."""

from __future__ import annotations

import argparse
import logging
import os
import socket

import gevent.pool
from confluent_kafka import Producer
from gevent import monkey

from tradeagg.engine.apply import Engine
from tradeagg.logs import kv
from tradeagg.observe import heartbeat
from tradeagg.observe.metrics import metrics_from_settings
from tradeagg.runtime.consumer import ShardConsumer
from tradeagg.runtime.feed import ChangeFeed
from tradeagg.runtime.janitor import Janitor
from tradeagg.runtime.kafkaconf import producer_config
from tradeagg.runtime.pressure import Pressure
from tradeagg.runtime.reclaim import Reclaimer
from tradeagg.runtime.service import Service
from tradeagg.settings import Settings
from tradeagg.store.connection import check, worker_clients

log = logging.getLogger("tradeagg.worker")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="consumer-group aggregation plus the janitor, until SIGTERM/SIGINT.",
        description="Reads every shard stream in consumer group 'workers', applies trades to "
        "the per-token windows, acknowledges after commit, and runs the janitor. SIGTERM or "
        "SIGINT: finishes the batch in hand and exits 0. Scale by running more workers.",
        epilog="example:\n  REDIS_URL=redis://127.0.0.1:6379/0 tradeagg worker",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run=run)


def consumer_name(settings: Settings) -> str:
    return settings.consumer_name or f"{socket.gethostname()}-{os.getpid()}"


def output_producer(settings: Settings) -> Producer | None:
    """A Kafka producer for ``TRADEAGG_OUTPUT_TOPIC``, or None when it is unset."""
    if not settings.output_topic:
        return None
    return Producer({**producer_config(settings), "linger.ms": 20})


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not monkey.is_module_patched("socket"):
        log.warning("gevent has not patched socket: run through the tradeagg entry point")
    metrics = metrics_from_settings(settings)
    service = Service("worker", metrics)
    reader, client = worker_clients(settings)
    check(client)
    engine = Engine(client, settings)
    pool = gevent.pool.Pool(settings.worker_pool)
    name = consumer_name(settings)

    def stopping() -> bool:
        return service.stopping.is_set()

    feed = ChangeFeed(client, settings, metrics, output_producer(settings))
    service.spawn("feed", feed.run, stopping)
    pressure = Pressure(metrics)  # one refusal warning a minute for the whole process
    for shard in range(settings.shards):
        consumer = ShardConsumer(
            shard, reader, engine, pool, settings, metrics, name, stopping, pressure, feed.applied
        )
        service.spawn(f"shard-{shard}", consumer.run)
    janitor = Janitor(
        client, engine, settings, metrics, service.sleep, stopping, name, feed.refreshed
    )
    janitor.pressure = pressure
    service.spawn("janitor", janitor.run)
    reclaimer = Reclaimer(engine, pool, settings, metrics, name, stopping, pressure, feed.applied)
    service.spawn("reclaim", reclaimer.run, service.sleep)
    heartbeat.start(
        service,
        client,
        settings,
        metrics,
        "worker",
        name,
        pool_utilisation=lambda: (pool.size - pool.free_count()) / pool.size,
    )
    log.info(
        "worker started %s", kv(consumer=name, shards=settings.shards, pool=settings.worker_pool)
    )
    code = service.run()
    log.info("worker stopped %s", kv(consumer=name))
    return code
