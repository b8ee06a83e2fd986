"""One demo run: embedded servers, the pipeline's processes, the feed, and its figures.

Besides the bridge and workers, ``tradeagg serve`` runs as a child on a free
loopback port: ``url`` is its live web screener.

The demo command only draws; this module owns what runs. The bridge and
workers are the real ``python -m tradeagg bridge|worker`` processes, pointed
at the embedded servers through their environment exactly as an operator
would point them at production ones. The figures are exact reads (``top``'s
``Ranker``) plus what the feed counted, so the screen is itself a live check:
"in flight" returns to 0 once the feed stops.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from typing import Any

import gevent
from confluent_kafka import Producer

from tradeagg.devtools.embedded import Embedded, free_port, wait_port
from tradeagg.devtools.feed import PacedFeed
from tradeagg.devtools.kafkatools import create_topic
from tradeagg.devtools.liveview import Snapshot
from tradeagg.engine.rank import Ranker
from tradeagg.errors import TradeaggError
from tradeagg.logs import kv
from tradeagg.observe import probes
from tradeagg.runtime.hub import on_hub_threadpool
from tradeagg.runtime.kafkaconf import producer_config
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

log = logging.getLogger("tradeagg.demo")

PARTITIONS = 4
TICK_S = 0.05


class DemoRun:
    def __init__(self, settings: Settings, rate: float, tokens: int, seed: int = 1) -> None:
        self.base = settings
        self.rate = rate
        self.tokens = tokens
        self.seed = seed
        self.embedded = Embedded()
        self.settings = settings
        self.client: Any = None
        self.url = ""  # the live screener, once started
        self.producer: Producer | None = None
        self.feed: PacedFeed | None = None
        self._feeding: gevent.Greenlet | None = None
        self._feed_started = 0.0
        self._last = (time.monotonic(), 0)

    def start(self, workers: int) -> None:
        """Servers, topic, bridge, workers, then the feed."""
        redis_url = self.embedded.start_redis()
        bootstrap = self.embedded.start_broker()
        self.settings = dataclasses.replace(
            self.base,
            redis_url=redis_url,
            redis_cluster=False,
            kafka_bootstrap_servers=bootstrap,
            kafka_url="",
            kafka_trusted_cert="",
            kafka_client_cert="",
            kafka_client_cert_key="",
            kafka_prefix="",
            kafka_group="tradeagg-demo",
            clock="wall",
            statsd_host="",
        )
        create_topic(self.settings, self.settings.topic, PARTITIONS, "demo")
        env = self.child_env()
        argv = [sys.executable, "-m", "tradeagg"]
        self.embedded.spawn("bridge", [*argv, "bridge"], env)
        for i in range(workers):
            name = f"worker-{i + 1}"
            self.embedded.spawn(
                name, [*argv, "worker"], {**env, "TRADEAGG_CONSUMER": f"demo-{name}"}
            )
        port = free_port()
        web = {"TRADEAGG_HTTP_PORT": str(port), "PORT": "", "TRADEAGG_HTTP_HOST": "127.0.0.1"}
        serve = self.embedded.spawn("serve", [*argv, "serve"], {**env, **web})
        wait_port(port, 60.0, serve)
        self.url = f"http://127.0.0.1:{port}/"
        self.client = connect(self.settings, max_connections=8)
        self.producer = Producer({**producer_config(self.settings), "linger.ms": 20})
        self.feed = PacedFeed(
            self.producer,
            self.settings.topic,
            self.rate,
            self.tokens,
            self.seed,
            keep_ms=self.settings.longest_ms,
        )
        self._feed_started = time.monotonic()
        self._feeding = gevent.spawn(self._feed_loop)

    def child_env(self) -> dict[str, str]:
        """The caller's environment, pointed at the embedded servers (nothing else of theirs)."""
        s = self.settings
        env = dict(os.environ)
        env.update(
            REDIS_URL=s.redis_url,
            TRADEAGG_REDIS_CLUSTER="0",
            KAFKA_BOOTSTRAP_SERVERS=s.kafka_bootstrap_servers,
            KAFKA_URL="",
            KAFKA_TRUSTED_CERT="",
            KAFKA_CLIENT_CERT="",
            KAFKA_CLIENT_CERT_KEY="",
            KAFKA_PREFIX="",
            TRADEAGG_KAFKA_TOPIC=s.kafka_topic,
            TRADEAGG_KAFKA_GROUP=s.kafka_group,
            TRADEAGG_WINDOWS=",".join(w.label for w in s.windows),
            TRADEAGG_SHARDS=str(s.shards),
            TRADEAGG_CLOCK="wall",
            STATSD_HOST="",
            DYNO="",
            PYTHONUNBUFFERED="1",
        )
        env.setdefault("LOG_LEVEL", "INFO")
        return env

    def _feed_loop(self) -> None:
        assert self.feed is not None
        while True:
            self.feed.tick()
            gevent.sleep(TICK_S)

    def check_children(self) -> None:
        dead = self.embedded.dead()
        if dead is not None:
            raise TradeaggError(
                f"{dead.name} exited with code {dead.proc.returncode}; its last lines:\n"
                + dead.tail()
            )

    def snapshot(self, window: str, columns: tuple[str, ...], limit: int) -> Snapshot:
        """Every figure of one refresh, the ranking read exactly as of one instant."""
        assert self.feed is not None
        t0 = time.perf_counter()
        ranking = Ranker(self.client, self.settings).top(window, "volume", limit)
        read_ms = (time.perf_counter() - t0) * 1000
        shortest, longest = self.settings.windows[0], self.settings.windows[-1]
        applied = sum(v.windows[longest.label].trades for v in ranking.views)
        recent = sum(v.windows[shortest.label].trades for v in ranking.views)
        active = sum(1 for v in ranking.views if v.windows[longest.label].trades)
        elapsed = max(1e-3, time.monotonic() - self._feed_started)
        delivered_in_window = self.feed.delivered_since(ranking.at - longest.ms)
        backlog = sum(
            f.backlog + f.pending for f in probes.shard_figures(self.client, self.settings)
        )
        now = time.monotonic()
        then, before = self._last
        self._last = (now, self.feed.delivered)
        return Snapshot(
            elapsed_s=elapsed,
            fed=self.feed.delivered,
            fed_rate=(self.feed.delivered - before) / max(1e-3, now - then),
            applied_rate=recent / min(elapsed, shortest.ms / 1000),
            in_flight=max(0, delivered_in_window - applied),
            backlog=backlog,
            active=active,
            applied=applied,
            read_ms=read_ms,
            ranking=ranking,
            columns=columns,
        )

    def drain(self, window: str, columns: tuple[str, ...], deadline_s: float) -> Snapshot:
        """Stop the feed, flush it, and wait (bounded) until every delivered trade is applied."""
        if self._feeding is not None:
            self._feeding.kill()
            self._feeding = None
        if self.producer is not None:
            on_hub_threadpool(self.producer.flush, 15)
        deadline = time.monotonic() + deadline_s
        while True:
            self.check_children()
            snap = self.snapshot(window, columns, limit=20)
            if snap.in_flight == 0 or time.monotonic() > deadline:
                return snap
            gevent.sleep(0.25)

    def close(self) -> None:
        """Stop everything in order and remove every file; safe to call twice."""
        if self._feeding is not None:
            self._feeding.kill()
        self.producer = self.feed = None  # librdkafka's handle goes before its broker does
        if self.client is not None:
            self.client.close()
        try:
            self.embedded.close()
        except Exception as exc:  # closing must not hide the error that got us here
            log.error("demo cleanup failed %s", kv(error=str(exc)))
