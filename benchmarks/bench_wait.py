"""Throughput cost of TRADEAGG_REDIS_WAIT_REPLICAS: WAIT 0 vs WAIT 1, same run. Prints; asserts nothing.

Starts a redis-server primary with one replica and a Tansu broker on free
loopback ports, then runs the end-to-end throughput bench (Kafka -> bridge ->
worker -> aggregates, real processes) alternately with WAIT 0 and WAIT 1,
flushing Redis between runs, and prints each run and the median ratio.

    python benchmarks/bench_wait.py --trades 100000 --tokens 2000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trades", type=int, default=100_000)
    p.add_argument("--tokens", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()

    from tradeagg.devtools.bench_e2e import run_e2e

    from tests.support.fixtures_kafka import TansuBroker
    from tests.support.sentinel_set import SentinelSet
    from tests.support.servers import RedisServer
    from tradeagg.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench-wait-"))
    (work / "p").mkdir()
    (work / "r").mkdir()
    primary = RedisServer(work / "p")
    primary.start()
    replica = RedisServer(work / "r", extra=["--replicaof", "127.0.0.1", str(primary.port)])
    replica.start()
    SentinelSet.wait_link(replica)
    broker = TansuBroker(work)
    broker.start()
    rates: dict[int, list[float]] = {0: [], 1: []}
    try:
        for _ in range(args.rounds):
            for wait in (0, 1):
                primary.client().flushall()
                os.environ.update(
                    REDIS_URL=primary.url,
                    KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
                    TRADEAGG_REDIS_WAIT_REPLICAS=str(wait),
                )
                fig = run_e2e(Settings.from_env(), args.trades, args.tokens, None)
                rate = float(fig["trades_per_s"])
                rates[wait].append(rate)
                print(json.dumps({"wait_replicas": wait, **fig}), flush=True)
                time.sleep(1.1)  # run_e2e names its topic by the second
        r0, r1 = statistics.median(rates[0]), statistics.median(rates[1])
        print(
            f"median trades/s  WAIT 0: {r0:,.0f}  WAIT 1: {r1:,.0f}  "
            f"ratio WAIT1/WAIT0: {r1 / r0 if r0 else float('nan'):.3f}"
        )
    finally:
        broker.stop()
        replica.stop()
        primary.stop()


if __name__ == "__main__":
    main()
