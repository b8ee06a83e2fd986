"""Redis memory of a token with bucketed windows (issue 13, CONTRACT §2c), in one run.

A token gets 23 hours of a slow feed (one trade every ``--slow-ms``: every 1m
bucket non-empty) then one hour of ``--rate`` trades/s, from ``--traders``
distinct wallets, applied through the real engine in time order (event
clock, batches of 1,000, as a live feed arrives) on a redis-server of its
own; twice: with windows 1m,5m,15m,30m,1h and with 6h,24h added (bucketed at
1m). Prints ``MEMORY USAGE key SAMPLES 0`` of every key of the token: bytes
per kept trade (list + id index: the exact hour), per bucket (buckets + bucket
deques), per distinct trader (the three trader sets, which keep 24 h of
traders with long windows; and prev_makers' two keys, lua/lib/pmakers.lua), and
the difference the long windows make.
Deterministic (fixed seed); prints figures, asserts nothing.

    python benchmarks/bench_long_memory.py            # 360,000 trades in the last hour
    python benchmarks/bench_long_memory.py --rate 10  # smaller, quicker
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace

TOKEN = "So11111111111111111111111111111111111111112"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
HOUR = 3_600_000
BATCH = 1_000


def feed(rate: int, slow_ms: int, traders: int, seed: int = 5) -> list[dict]:
    """23 h of one trade per ``slow_ms``, then 1 h of ``rate`` trades/s, in ts order."""
    rng = random.Random(seed)
    wallets = ["".join(rng.choice(BASE58) for _ in range(44)) for _ in range(traders)]
    base = 1_700_000_000_000
    stamps = list(range(base, base + 23 * HOUR, slow_ms))
    step = 1000 / rate
    stamps += [base + 23 * HOUR + int(i * step) for i in range(rate * 3600)]
    out = []
    for n, ts in enumerate(stamps):
        sig = "".join(rng.choice(BASE58) for _ in range(88))
        out.append({"id": f"{sig}:{rng.randrange(6)}", "ts": ts, "seq": n % 7,
                    "side": "buy" if rng.random() < 0.55 else "sell",
                    "quote_nano": int(10 ** rng.uniform(7.7, 10.3)),
                    "price": f"{10 ** rng.uniform(-3, 1):.6f}", "trader": rng.choice(wallets)})
    return out


def measure(windows: str, trades: list, client, engine_of) -> dict:
    from tradeagg.contract.keys import TokenKeys

    client.flushall()
    engine = engine_of(windows)
    i = 0
    while i < len(trades):  # batches of at most BATCH trades and one minute: none late
        j = i + 1
        while j < len(trades) and j - i < BATCH and trades[j].ts - trades[i].ts < 60_000:
            j += 1
        part = trades[i:j]
        r = engine.apply_call([(TOKEN, [t.entry for t in part])], now=part[-1].ts)[0]
        if r.failed or r.late:
            raise SystemExit(f"apply failed at {i}: {r}")
        i = j
    k = TokenKeys(TOKEN)
    names = ("trades", "indices", "aggregates", "last_update", "ids", "checked",
             "makers", "buyers", "sellers", "high", "low", "buckets", "bhigh", "blow",
             "pmakers", "ptraders")
    fig = {n: int(client.memory_usage(getattr(k, n), samples=0) or 0) for n in names}
    fig["kept"] = int(client.llen(k.trades))
    fig["buckets_n"] = int(client.zcard(k.buckets))
    fig["traders_n"] = int(client.zcard(k.makers))
    fig["pm_members_n"] = int(client.zcard(k.pmakers))
    fig["pm_traders_n"] = max(int(client.hlen(k.ptraders)) - 1, 0)  # (less the marker)
    return fig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=100, help="trades/s in the last hour")
    p.add_argument("--slow-ms", type=int, default=10_000, help="ms between trades before it")
    p.add_argument("--traders", type=int, default=5_000, help="distinct wallets")
    a = p.parse_args()
    import redis

    from tradeagg.contract.trade import Trade
    from tradeagg.devtools.embedded import Embedded
    from tradeagg.engine.apply import Engine
    from tradeagg.settings import Settings, parse_windows

    trades = [Trade(token=TOKEN, **t) for t in feed(a.rate, a.slow_ms, a.traders)]
    emb = Embedded()
    try:
        client = redis.Redis.from_url(emb.start_redis(), socket_timeout=600)
        base = Settings(clock="event", max_token_trades=2_000_000)

        def engine_of(spec: str) -> Engine:
            return Engine(client, replace(base, windows=parse_windows(spec)))

        out = {}
        for label, spec in (("exact", "1m,5m,15m,30m,1h"), ("long", "1m,5m,15m,30m,1h,6h,24h")):
            out[label] = measure(spec, trades, client, engine_of)
        e, g = out["exact"], out["long"]
        total = {k: sum(v for n, v in f.items() if not n.endswith(("_n", "kept")))
                 for k, f in out.items()}
        out["summary"] = {
            "trades_applied": len(trades),
            "kept_trades": g["kept"],
            "bytes_per_kept_trade": round((g["trades"] + g["ids"]) / g["kept"], 1),
            "buckets": g["buckets_n"],
            "bytes_per_bucket": round((g["buckets"] + g["bhigh"] + g["blow"]) / g["buckets_n"], 1),
            "distinct_traders_24h": g["traders_n"],
            "trader_sets_bytes_per_trader": round(
                (g["makers"] + g["buyers"] + g["sellers"]) / g["traders_n"], 1),
            "prev_makers_bytes_per_trader": [
                round((f["pmakers"] + f["ptraders"]) / max(f["pm_traders_n"], 1), 1)
                for f in (e, g)
            ],
            "prev_makers_members_per_trader": [
                round(f["pm_members_n"] / max(f["pm_traders_n"], 1), 2) for f in (e, g)
            ],
            "total_exact_only": total["exact"],
            "total_with_6h_24h": total["long"],
            "added_by_long_windows": total["long"] - total["exact"],
            "aggregates_bytes": [e["aggregates"], g["aggregates"]],
        }
        print(json.dumps(out, indent=1))
    finally:
        emb.close()


if __name__ == "__main__":
    main()
