"""End-to-end figures: Kafka (Tansu) -> bridge -> worker -> aggregates. Prints; asserts nothing.

Starts its own redis-server and Tansu broker on free loopback ports (never the
machine's 6379), points the environment at them, and calls
``tradeagg.devtools.bench_pipeline.run_e2e`` for a throughput run and a latency run.

    python benchmarks/bench_e2e.py --trades 200000 --tokens 2000 --rate 2000 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trades", type=int, default=200_000)
    p.add_argument("--tokens", type=int, default=2000)
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--seconds", type=float, default=30.0, help="length of the latency run")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--skip", choices=["throughput", "latency"])
    args = p.parse_args()

    from tests.support.fixtures_kafka import TansuBroker
    from tests.support.servers import RedisServer
    from tradeagg.devtools.bench_pipeline import run_e2e
    from tradeagg.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    redis_server = RedisServer(work)
    redis_server.start()
    broker = TansuBroker(work)
    broker.start()
    try:
        os.environ.update(
            {"REDIS_URL": redis_server.url, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}
        )
        settings = Settings.from_env()
        if args.skip != "throughput":
            fig = run_e2e(settings, args.trades, args.tokens, None, workers=args.workers)
            print(json.dumps(fig), flush=True)
        if args.skip != "latency":
            n = int(args.rate * args.seconds)
            fig = run_e2e(settings, n, args.tokens, args.rate, workers=args.workers)
            print(json.dumps(fig), flush=True)
    finally:
        broker.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
