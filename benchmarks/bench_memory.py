"""Redis memory per kept trade of a token, before vs after, in one run.

Issue 11: a hot token keeps every trade of its longest window, so its bytes
per trade decide how many tokens fit in a Redis. This builds tokens of
--sizes trades through the real engine (``Engine.apply_call``, in-order
batches, as a live feed arrives) on a redis-server of its own, then sums
``MEMORY USAGE key SAMPLES 0`` (every element counted) over the token's keys
and divides by the trades kept. The trades look like Solana's: an 88-char
base58 signature + ``:<ix>`` as id, ts on 400 ms blocks spread over 55
minutes (all inside the default 1h window: nothing is trimmed), seq 0..~2000
within a block, quotes 0.05-20 SOL in nano units, prices 0.000001234 to 12.5
as decimal strings. ``--extra N`` lengthens every id by N characters: the
cost of N more bytes per list element. ``--traders N`` gives the trades N
distinct wallets (0: no trader, as records of format 1) and ``--metrics``
seed|full says whether the screener's five sorted sets are kept (issue 13):
their bytes are counted in ``total``, and printed per distinct trader;
``token keys`` is the token's keys without them (the four of CONTRACT §3 and
the id index: what ``tests/integration/test_memory.py`` holds to 150 B).

Each code tree is measured in a child process with PYTHONPATH set to it, so
one run prints before and after side by side. Deterministic (fixed seed);
prints figures, asserts nothing.

    python benchmarks/bench_memory.py --before /work/main --after .
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
TOKEN = "So11111111111111111111111111111111111111112"
MINUTE = 60_000
SPAN = 55 * MINUTE
BLOCK_MS = 400
BATCH = 1_000
KEY_NAMES = ("trades", "indices", "aggregates", "last_update", "ids")
SCREENER_NAMES = ("makers", "buyers", "sellers", "high", "low")


def feed(n: int, extra: int, seed: int = 11, traders: int = 0) -> list[dict]:
    """``n`` trades in (ts, seq) order: Solana-like ids, quotes and prices."""
    rng = random.Random(seed)
    blocks = SPAN // BLOCK_MS
    base = 1_700_000_000_000
    out: list[dict] = []
    wallets = ["".join(rng.choice(BASE58) for _ in range(44)) for _ in range(traders)]
    per_block = [0] * blocks
    for _ in range(n):
        per_block[rng.randrange(blocks)] += 1
    for b, count in enumerate(per_block):
        for seq in sorted(rng.sample(range(2_000), count)) if count <= 2_000 else range(count):
            sig = "".join(rng.choice(BASE58) for _ in range(88))
            ident = f"{sig}:{rng.randrange(6)}" + "x" * extra
            quote_nano = int(10 ** rng.uniform(7.7, 10.3))  # 0.05 .. 20 SOL
            digits = rng.randint(2, 6)
            price = f"{10 ** rng.uniform(-5.9, 1.09):.{digits}g}"
            if "e" in price:
                price = format(Decimal(price), "f")
            out.append({"id": ident, "side": "buy" if rng.random() < 0.55 else "sell",
                        "quote_nano": quote_nano, "price": price,
                        "ts": base + b * BLOCK_MS, "seq": seq,
                        "trader": rng.choice(wallets) if wallets else ""})
    return out


def child(sizes: list[int], extra: int, traders: int, metrics: str) -> dict:
    """Measure the tree on PYTHONPATH; returns {size: {key: bytes, "kept": trades kept}}."""
    import redis

    from tradeagg.contract.keys import TokenKeys
    from tradeagg.contract.trade import Trade
    from tradeagg.devtools.embedded import Embedded
    from tradeagg.engine.apply import Engine
    from tradeagg.settings import Settings

    emb = Embedded()
    out: dict = {}
    try:
        client = redis.Redis.from_url(emb.start_redis(), socket_timeout=600)
        settings = Settings(max_token_trades=2_000_000)
        if hasattr(settings, "metrics"):
            settings = replace(settings, metrics=metrics)
        engine = Engine(client, settings)
        k = TokenKeys(TOKEN)
        keys = dict(zip(KEY_NAMES, [*k.all(), k.ids], strict=True))
        if hasattr(k, "screener"):
            keys.update(zip(SCREENER_NAMES, k.screener(), strict=True))
        for size in sizes:
            client.flushall()
            trades = [Trade(token=TOKEN, **t) for t in feed(size, extra, traders=traders)]
            for i in range(0, size, BATCH):
                part = trades[i : i + BATCH]
                results = engine.apply_call([(TOKEN, [t.entry for t in part])], now=part[-1].ts)
                if results[0].failed or results[0].applied != len(part):
                    raise SystemExit(f"apply failed at {i}: {results[0]}")
            fig = {name: int(client.memory_usage(key, samples=0) or 0) for name, key in keys.items()}
            for name in SCREENER_NAMES:
                fig.setdefault(name, 0)
            fig["traders"] = len({t.trader for t in trades if t.trader})
            fig["kept"] = int(client.llen(k.trades))
            fig["ids_encoding"] = (client.object("encoding", k.ids) or b"-").decode()
            out[str(size)] = fig
        return out
    finally:
        emb.close()


def run_child(tree: str, sizes: list[int], extra: int, traders: int, metrics: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    cmd = [sys.executable, __file__, "--child", "--sizes", ",".join(map(str, sizes)),
           "--extra", str(extra), "--traders", str(traders), "--metrics", metrics]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/tmp")
    if done.returncode:
        raise SystemExit(f"child for {tree} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default="", help="code tree before the change (PYTHONPATH)")
    p.add_argument("--after", default=".", help="code tree after the change (PYTHONPATH)")
    p.add_argument("--sizes", default="10000,100000,300000", help="trades per token")
    p.add_argument("--extra", type=int, default=0, help="characters added to every id")
    p.add_argument("--traders", type=int, default=0, help="distinct wallets (0: no trader)")
    p.add_argument("--metrics", choices=("full", "seed"), default="full",
                   help="TRADEAGG_METRICS of both trees (an older tree ignores it)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        print(json.dumps(child(sizes, args.extra, args.traders, args.metrics)))
        return
    trees = {**({"before": args.before} if args.before else {}), "after": args.after}
    got = {name: run_child(tree, sizes, args.extra, args.traders, args.metrics)
           for name, tree in trees.items()}
    print(f"bytes per kept trade (MEMORY USAGE SAMPLES 0 / LLEN), ids of {90 + args.extra} "
          f"chars (88 + ':<ix>' + {args.extra})")
    for size in map(str, sizes):
        print(f"-- {int(size):,} trades")
        print(f"{'key':<14}" + "".join(f"{n:>12}" for n in trees) +
              ("" if len(trees) < 2 else f"{'after/before':>14}"))
        for name in (*KEY_NAMES, "token keys", *SCREENER_NAMES, "total"):
            per = {}
            for tree in trees:
                fig = got[tree][size]
                every = {"total": (*KEY_NAMES, *SCREENER_NAMES), "token keys": KEY_NAMES}
                used = sum(fig[k] for k in every[name]) if name in every else fig[name]
                per[tree] = used / fig["kept"]
            line = f"{name:<14}" + "".join(f"{per[n]:>12.1f}" for n in trees)
            if len(trees) == 2:
                ratio = per["after"] / per["before"] if per["before"] else float("nan")
                line += f"{ratio:>14.3f}"
            print(line)
        print(f"{'ids encoding':<14}" + "".join(f"{got[n][size]['ids_encoding']:>12}" for n in trees))
        line = f"{'B per trader':<14}"
        for n in trees:
            fig = got[n][size]
            sets = sum(fig[k] for k in SCREENER_NAMES[:3])
            line += f"{sets / fig['traders']:>12.1f}" if fig["traders"] else f"{'-':>12}"
        print(line + "   (makers + buyers + sellers sets per distinct trader)")


if __name__ == "__main__":
    main()
