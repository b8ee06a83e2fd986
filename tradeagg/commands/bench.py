"""`tradeagg bench`: measure throughput and latency on this machine."""

from __future__ import annotations

import argparse
from dataclasses import replace

from tradeagg.commands import render
from tradeagg.commands.progress import Progress
from tradeagg.contract.exactjson import dumps
from tradeagg.devtools.bench import BenchConfig, run_engine
from tradeagg.devtools.embedded import Embedded
from tradeagg.errors import UsageError
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

EXAMPLES = """examples:
  tradeagg bench                                  # engine: 200k trades, 2,000 tokens, own Redis
  tradeagg bench --clock wall --trades 100000
  tradeagg bench --metrics seed                   # without makers/buyers/sellers/high/low
  tradeagg bench --mode e2e                       # Kafka -> bridge -> worker, own Redis + broker
  tradeagg bench --mode e2e --rate 2000           # p99 trade-to-visible latency at 2,000/s
  tradeagg bench --redis-url redis://host:6379/5  # an EMPTY database of your own Redis
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure throughput and latency (starts its own Redis unless --redis-url).",
        description="engine mode writes synthetic trades (Zipf over --tokens) straight into the "
        "shard streams, applies them with the worker code in this process and prints trades/s, "
        "Redis CPU share, batch and Lua-call latency, and a check of --verify tokens against "
        "the brute-force reference. e2e mode goes through Kafka, bridge and worker processes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--mode",
        choices=("engine", "e2e"),
        default="engine",
        help="engine: this process applies; e2e: Kafka, bridge and worker processes (default %(default)s)",
    )
    p.add_argument(
        "--trades", type=int, default=200_000, help="synthetic trades (default %(default)s)"
    )
    p.add_argument(
        "--tokens", type=int, default=2_000, help="synthetic tokens (default %(default)s)"
    )
    p.add_argument(
        "--clock",
        choices=("event", "wall"),
        default="event",
        help="engine mode: event (trades over --span-s of event time) or wall (default %(default)s)",
    )
    p.add_argument(
        "--metrics",
        choices=("full", "seed"),
        default=None,
        help="engine mode: full (with the screener metrics) or seed (without them); sets "
        "TRADEAGG_METRICS (default: TRADEAGG_METRICS, full)",
    )
    p.add_argument(
        "--span-s",
        type=float,
        default=4_800.0,
        help="event time covered, s (engine mode) (default %(default)s)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="e2e mode: paced trades/s, measures latency (default: as fast as possible)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="e2e mode: worker processes (default %(default)s)"
    )
    p.add_argument(
        "--verify",
        type=int,
        default=50,
        help="tokens checked against brute force (default %(default)s)",
    )
    p.add_argument("--redis-url", default="", help="use this (empty) Redis (default: start one)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(run=run)


def _print(figures: dict, as_json: bool) -> None:
    if as_json:
        print(dumps(figures), flush=True)
        return
    rows = [(key, str(value)) for key, value in figures.items()]
    print(render.text(render.table(("figure", "value"), rows, left=(0, 1))), flush=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.trades < 1 or args.tokens < 1:
        raise UsageError("--trades and --tokens must be positive")
    with_embedded = Embedded()
    try:
        if args.mode == "engine":
            url = args.redis_url or with_embedded.start_redis()
            s = replace(
                settings,
                redis_url=url,
                redis_cluster="+cluster://" in url or settings.redis_cluster,
                clock=args.clock,
                metrics=args.metrics or settings.metrics,
            )
            client = connect(s, block_ms=s.block_ms)
            if client.dbsize():
                raise UsageError(f"{url} is not empty: bench needs an empty database")
            cfg = BenchConfig(
                trades=args.trades, tokens=args.tokens, span_s=args.span_s, verify=args.verify
            )
            progress = Progress("bench", args.trades, every_s=settings.progress_every_s)
            figures = run_engine(client, s, cfg, progress.update)
            progress.close()
        else:
            from tradeagg.devtools.bench_pipeline import run_e2e

            url = args.redis_url or with_embedded.start_redis()
            broker = with_embedded.start_broker()
            s = replace(settings, redis_url=url, kafka_bootstrap_servers=broker, kafka_url="")
            progress = Progress("bench", args.trades, every_s=settings.progress_every_s)
            figures = run_e2e(
                s,
                args.trades,
                args.tokens,
                args.rate,
                workers=args.workers,
                on_progress=progress.update,
            )
            progress.close()
        _print(figures, args.json)
        return 1 if figures.get("mismatches") else 0
    finally:
        with_embedded.close()
