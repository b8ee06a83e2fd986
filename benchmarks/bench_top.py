"""How long `top` takes over N active tokens. Prints figures; asserts nothing.

Starts its own redis-server on a free port (never the machine's 6379), loads
``--tokens`` tokens with ``--trades`` synthetic trades each spread over the
last hour, then times ``Ranker.top`` (all tokens read exactly, ranked).

    python benchmarks/bench_top.py --tokens 3000 --trades 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.servers import RedisServer
from tradeagg.clock import now_ms
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import Engine
from tradeagg.engine.rank import Ranker
from tradeagg.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=3000)
    ap.add_argument("--trades", type=int, default=100, help="trades per token (average)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-top-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            client = server.client()
            settings = Settings()
            feed = SyntheticFeed(tokens=args.tokens, seed=7, zipf_s=0.6)
            n = args.tokens * args.trades
            now = now_ms()
            trades = feed.trades(n, now - 3_500_000, rate=n / 3_500)
            engine = Engine(client, settings)
            t0 = time.perf_counter()
            for i in range(0, n, 20_000):
                engine.apply_records([t.record for t in trades[i : i + 20_000]], now=now)
            load_s = time.perf_counter() - t0
            ranker = Ranker(client, settings)
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                ranking = ranker.top("5m", "volume", limit=20)
                times.append(time.perf_counter() - t0)
            print(
                f"tokens_active={ranking.candidates} trades={n} load_s={load_s:.1f} "
                f"top_median_ms={statistics.median(times) * 1000:.0f} "
                f"top_min_ms={min(times) * 1000:.0f} top_max_ms={max(times) * 1000:.0f}"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
