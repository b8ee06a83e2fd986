"""Redis time of ``apply_trades.lua``, two code trees, one process, same data.

``tradeagg bench`` moves 2-3x between runs on a shared machine, too much to
see a few percent. This isolates the script: the same synthetic feed (Zipf
over --tokens, --span-s of event time, event clock) is cut into batches,
grouped and split into calls the way a worker does, and every call is run
on two Redis servers, one per tree's script, alternating which goes first.
Redis' own per-command time (INFO commandstats, usec of EVALSHA) is summed
per server, and the ratio after/before printed with the client-side wall
ratio and that of the CPU time of Redis' main thread (which, unlike both,
does not count the time other processes hold the cores). Finally every
token's aggregates hash is compared between the two servers: both scripts
must have computed the same state. Each tree gets the
same trades in the stream format its own bridge writes (``format_of``: 912d4c2
reads decimal entries without traders, this tree compact ones), so run it
with PYTHONPATH = the newest tree (the one whose codec writes format 3).
The keys per token follow TRADEAGG_METRICS and TRADEAGG_WINDOWS as a worker's
do (``keys_for``): with ``full`` or bucketed windows both trees must take this
tree's key layout (the screener's sets, then the buckets). Asserts nothing.

    python benchmarks/bench_lua_ratio.py --before /work/main --after .
    TRADEAGG_WINDOWS=1m,5m,15m,30m,1h,6h,24h TRADEAGG_METRICS=full \
        python benchmarks/bench_lua_ratio.py --before /work/main --after . --trades 50000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from tradeagg.contract import entry as codec
from tradeagg.contract.keys import TokenKeys, apply_keys, full_apply_keys, long_apply_keys
from tradeagg.contract.trade import Trade
from tradeagg.devtools.embedded import Embedded
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import Engine, group_records, windows_arg
from tradeagg.settings import Settings


def script_of(tree: str) -> str:
    """``apply_trades`` as that tree's loader assembles it."""
    code = "from tradeagg.store.scripts import source; print(source('apply_trades'), end='')"
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    cmd = [sys.executable, "-c", code]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd="/tmp").stdout


def keys_per_token(tree: str) -> int:
    """How many of ``apply_keys``' keys that tree's script takes per token (5, then 6)."""
    code = "from tradeagg.contract.keys import apply_keys; print(len(apply_keys('x')))"
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd="/tmp")
    return int(out.stdout)


def format_of(tree: str) -> str:
    """The stream entry format that tree's bridge writes (its worker hands those
    entries to its script): "1" decimal, no trader (912d4c2), "2" decimal with
    the trader's digest, "3" compact (base 36)."""
    code = "from tradeagg.contract import entry; print(entry.FORMAT_VERSION)"
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd="/tmp")
    return out.stdout.strip()


def record_in(t: Trade, fmt: str) -> str:
    """``t``'s stream record as a bridge of format ``fmt`` writes it: the same trade
    for both trees, each in the form its script reads."""
    if fmt == "3":
        return codec.record(t)
    side = ("b" if t.side == "buy" else "s") + (codec.trader_digest(t.trader) if fmt == "2" else "")
    entry = f"{t.ts} {t.seq} {side} {t.quote_nano} {t.price} {t.id}"
    return f"{t.token} {entry} {codec.id_digest(t.id)}"


def keys_for(token: str, s: Settings, per: int) -> list[str]:
    """A worker's KEYS for ``token`` under ``s`` (engine/apply.py), or the first
    ``per`` of the seed's (the layout of a tree that takes fewer)."""
    if s.long_windows or s.prev_metrics:
        return long_apply_keys(token, s.metrics == "full")
    if s.metrics == "full":
        return full_apply_keys(token)
    return apply_keys(token)[:per]


def evalsha_usec(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("usec", 0))


def main_cpu(client: redis.Redis) -> float:
    """CPU seconds of Redis' main thread (where scripts run): unlike EVALSHA's
    usec (wall time) it does not grow while the machine's other processes hold
    the cores."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True)
    p.add_argument("--after", default=".")
    p.add_argument("--trades", type=int, default=200_000)
    p.add_argument("--tokens", type=int, default=2_000)
    p.add_argument("--span-s", type=float, default=4_800.0)
    p.add_argument("--batch", type=int, default=3_000, help="trades per worker batch")
    args = p.parse_args()
    emb = Embedded()
    try:
        servers = {name: redis.Redis.from_url(emb.start_redis()) for name in ("before", "after")}
        shas = {
            name: servers[name].script_load(script_of(getattr(args, name))) for name in servers
        }
        per = {name: keys_per_token(getattr(args, name)) for name in servers}
        fmt = {name: format_of(getattr(args, name)) for name in servers}
        s = Settings.from_env()  # TRADEAGG_METRICS, TRADEAGG_WINDOWS: as a worker reads them
        engine = Engine(servers["after"], s)  # only for grouping into calls
        feed = SyntheticFeed(tokens=args.tokens, seed=7)
        start = 1_700_000_000_000
        trades = feed.trades(args.trades, start, rate=args.trades / args.span_s)
        wall = {name: 0.0 for name in servers}
        usec0 = {name: evalsha_usec(c) for name, c in servers.items()}
        cpu0 = {name: main_cpu(c) for name, c in servers.items()}
        calls = 0
        for b, i in enumerate(range(0, len(trades), args.batch)):
            batch = trades[i : i + args.batch]
            grouped = {
                name: group_records(record_in(t, fmt[name]) for t in batch)[0] for name in servers
            }
            for call in engine.calls(grouped["after"]):
                keys = {
                    name: [k for token, _ in call for k in keys_for(token, s, per[name])]
                    for name in servers
                }
                order = ("before", "after") if (b + calls) % 2 else ("after", "before")
                for name in order:
                    argv = [0, "event", windows_arg(s), s.max_token_trades]
                    argv += ["\n".join(grouped[name][token]) for token, _ in call]
                    t0 = time.perf_counter()
                    servers[name].evalsha(shas[name], len(keys[name]), *keys[name], *argv)
                    wall[name] += time.perf_counter() - t0
                calls += 1
        usec = {name: evalsha_usec(c) - usec0[name] for name, c in servers.items()}
        cpu = {name: main_cpu(c) - cpu0[name] for name, c in servers.items()}
        tokens = sorted({t.token for t in trades})
        differ = [
            t
            for t in tokens
            if servers["before"].hgetall(TokenKeys(t).aggregates)
            != servers["after"].hgetall(TokenKeys(t).aggregates)
        ]
        print(f"{len(trades)} trades, {len(tokens)} tokens, {calls} apply_trades calls per tree")
        for name in servers:
            print(f"{name:<7} Redis EVALSHA {usec[name] / 1e6:8.3f} s   client wall {wall[name]:8.3f} s"
                  f"   Redis main thread CPU {cpu[name]:8.3f} s")
        print(f"after/before: Redis time {usec['after'] / usec['before']:.3f}, "
              f"wall {wall['after'] / wall['before']:.3f}, CPU {cpu['after'] / cpu['before']:.3f}")
        print(f"tokens whose aggregates differ between the trees: {len(differ)} {differ[:3]}")
    finally:
        emb.close()


if __name__ == "__main__":
    main()
