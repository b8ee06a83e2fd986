"""`tradeagg reclaim`: claim entries pending too long on any consumer, apply them, ack them."""

from __future__ import annotations

import argparse
import logging
import os
import socket

import gevent.pool
import redis

from tradeagg.commands.progress import Progress
from tradeagg.commands.summary import add_json_flag, emit
from tradeagg.engine.apply import Engine
from tradeagg.errors import StoreError, UsageError
from tradeagg.logs import kv
from tradeagg.observe.metrics import TotalsMetrics
from tradeagg.runtime.reclaim import Reclaimer
from tradeagg.settings import Settings
from tradeagg.store.connection import connect
from tradeagg.store.stream import ShardStream

log = logging.getLogger("tradeagg.reclaim")

DEFAULT_MIN_IDLE_MS = 60_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reclaim",
        help="claim entries pending too long on any consumer, apply them, ack them.",
        description="Claims (XAUTOCLAIM) every shard-stream entry pending longer than "
        "--min-idle-ms on any consumer, dead or alive, applies it exactly like a worker "
        "(trades already applied are recognised and skipped), acknowledges it and prints a "
        "summary. Entries delivered more than TRADEAGG_MAX_DELIVERIES times go to the "
        "dead-letter stream instead. Safe to run while workers run. Exits 0.",
        epilog="examples:\n"
        "  tradeagg reclaim                    # entries idle for a minute or more\n"
        "  tradeagg reclaim --min-idle-ms 0    # everything pending, e.g. after a crash",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--min-idle-ms",
        type=int,
        default=DEFAULT_MIN_IDLE_MS,
        metavar="N",
        help=f"claim entries idle at least N ms (default {DEFAULT_MIN_IDLE_MS}; 0: all pending)",
    )
    add_json_flag(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.min_idle_ms < 0:
        raise UsageError(f"--min-idle-ms must be >= 0, not {args.min_idle_ms}")
    client = connect(settings, max_connections=settings.worker_pool + 4)
    metrics = TotalsMetrics()
    name = f"reclaim-{socket.gethostname()}-{os.getpid()}"
    reclaimer = Reclaimer(
        Engine(client, settings), gevent.pool.Pool(settings.worker_pool), settings, metrics, name
    )
    try:
        progress = Progress("reclaim", 0, every_s=settings.progress_every_s)
        result = reclaimer.reclaim(args.min_idle_ms, progress.update)
        progress.close()
        if not result.left_pending:
            for shard in range(settings.shards):
                ShardStream(client, shard).delete_consumer(name)
    except redis.RedisError as exc:
        raise StoreError(f"reclaim failed: {exc}") from None
    t = metrics.totals()
    figures = dict(
        claimed=result.claimed,
        applied=t.get("trades.applied", 0),
        duplicates=t.get("trades.duplicate", 0),
        late=t.get("trades.late", 0),
        dead_lettered=t.get("deadletters", 0),
        poison=result.poison,
        acked=t.get("entries.acked", 0) + result.poison,
        left_pending=result.left_pending,
    )
    log.info("reclaim done %s", kv(**figures))
    emit("reclaim", True, args.json, prefix="reclaim: ", **figures)
    return 0
