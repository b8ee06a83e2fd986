"""Redis time of ``read_window.lua``, two code trees, one process, same data.

The same synthetic feed (--tokens over the last --span-s, Zipf 0.6) is applied
by this tree's engine to two Redis servers (nothing stored differs between the
trees), then every token is read through each tree's own ``Reader.fetch``
(that tree's tradeagg/engine/read.py, with its ``read_window`` script: its grouping
of tokens into calls and pipelines is measured), --batch tokens per fetch: as of
its last_update and --ahead-ms after it (a slide in memory). Which tree goes first
alternates fetch by fetch. Redis' own EVALSHA usec (INFO commandstats) is summed
per server and the ratio after/before printed; every token's answers must be identical between
the trees (a difference is printed and the exit status is 1).
TRADEAGG_METRICS / TRADEAGG_WINDOWS as a reader reads them.

    python benchmarks/bench_read_ratio.py --before /work/main --after .
    TRADEAGG_WINDOWS=1m,5m,15m,30m,1h,6h,24h python benchmarks/bench_read_ratio.py --before ...
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import redis

from tradeagg.contract.keys import TokenKeys
from tradeagg.devtools.embedded import Embedded
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import Engine
from tradeagg.settings import Settings


def script_of(tree: str) -> str:
    """``read_window`` as that tree's loader assembles it."""
    code = "from tradeagg.store.scripts import source; print(source('read_window'), end='')"
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    cmd = [sys.executable, "-c", code]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd="/tmp").stdout


def reader_of(tree: str, client: redis.Redis, settings: Settings, batch: int):
    """That tree's ``Reader`` (its tradeagg/engine/read.py, loaded under another name;
    the rest of tradeagg is this tree's) with that tree's ``read_window``."""
    path = Path(tree).resolve() / "tradeagg" / "engine" / "read.py"
    spec = importlib.util.spec_from_file_location(f"read_of_{abs(hash(str(path)))}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    scripts = SimpleNamespace(read_window=client.register_script(script_of(tree)))
    return module.Reader(client, settings, scripts, batch=batch)


def evalsha_usec(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True)
    p.add_argument("--after", default=".")
    p.add_argument("--trades", type=int, default=30_000)
    p.add_argument("--tokens", type=int, default=3_000)
    p.add_argument("--span-s", type=float, default=250.0)
    p.add_argument("--ahead-ms", type=int, default=3_000)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--batch", type=int, default=500, help="tokens per fetch (Reader's BATCH); trees alternate per fetch")
    args = p.parse_args()
    emb = Embedded()
    differ = 0
    try:
        servers = {name: redis.Redis.from_url(emb.start_redis()) for name in ("before", "after")}
        s = Settings.from_env({**os.environ, "TRADEAGG_CLOCK": "event"})
        readers = {n: reader_of(getattr(args, n), servers[n], s, args.batch) for n in servers}
        feed = SyntheticFeed(tokens=args.tokens, seed=7, zipf_s=0.6)
        now = int(time.time() * 1000)
        start = now - int(args.span_s * 1000)
        trades = feed.trades(args.trades, start, rate=args.trades / args.span_s)
        for c in servers.values():
            engine = Engine(c, s)
            for i in range(0, len(trades), 1_000):
                engine.apply_records([t.record for t in trades[i : i + 1_000]])
        tokens = sorted({t.token for t in trades})
        lus = {t: int(servers["after"].get(TokenKeys(t).last_update)) for t in tokens}
        cases = {"last_update": lambda t: None, "ahead": lambda t: lus[t] + args.ahead_ms}
        for case, at in cases.items():
            answers: dict[str, list] = {n: [] for n in servers}
            u0 = {n: evalsha_usec(c) for n, c in servers.items()}
            for rnd in range(args.rounds):
                for b, i in enumerate(range(0, len(tokens), args.batch)):
                    order = ("before", "after") if (rnd + b) % 2 else ("after", "before")
                    for name in order:
                        part = tokens[i : i + args.batch]
                        got = readers[name].fetch(part, [at(t) for t in part])
                        if rnd == 0:
                            answers[name].extend(got)
            usec = {n: evalsha_usec(c) - u0[n] for n, c in servers.items()}
            bad = [t for t, a, b in zip(tokens, answers["before"], answers["after"], strict=True) if a != b]
            differ += len(bad)
            kinds = sorted({(a[0].decode() if isinstance(a[0], bytes) else a[0]) for a in answers["after"]})
            per = {n: usec[n] / (args.rounds * len(tokens)) for n in servers}  # per token
            print(f"{case:<11} {len(tokens)} tokens x {args.rounds} rounds, answers {kinds}: "
                  f"before {per['before']:6.1f} us/token, after {per['after']:6.1f} us/token, "
                  f"after/before {usec['after'] / usec['before']:.3f}; "
                  f"tokens answering differently: {len(bad)} {bad[:3]}")
    finally:
        emb.close()
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
