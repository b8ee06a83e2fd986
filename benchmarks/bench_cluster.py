"""Engine throughput on one Redis vs a 3-master Redis Cluster, with 1..P processes.

Prints figures; asserts nothing. Starts its own redis-server and cluster on
free loopback ports (never the machine's 6379). Each process is a gevent
child that applies synthetic trades the way a worker does (batches grouped
by token, ``Engine.calls`` run through a pool of ``--pool`` greenlets) and
reports its own CPU time; Redis CPU comes from ``INFO cpu`` of every node.
Per-trade CPU costs (client and server) are the basis of the scaling
estimate: on 2 cores every configuration is CPU-bound on the one machine.

    python benchmarks/bench_cluster.py --trades 20000 --procs 1,2 --apply calls
    python benchmarks/bench_cluster.py --bridge 30000 --procs ''  # one bridge's CPU/trade
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def child(args: argparse.Namespace) -> None:
    """One worker-like process: apply ``--trades`` trades, print JSON figures."""
    from gevent import monkey

    monkey.patch_all()
    import os

    import gevent.pool

    sys.path.insert(0, str(ROOT))
    from tradeagg.devtools.synthetic import SyntheticFeed
    from tradeagg.engine.apply import Engine, group_records
    from tradeagg.settings import Settings, parse_windows
    from tradeagg.store.connection import connect

    settings = Settings(
        redis_url=args.url,
        redis_cluster="+cluster" in args.url,
        windows=parse_windows("1m,5m,15m,30m,1h"),
        tokens_per_call=args.tokens_per_call,
    )
    client = connect(settings)
    engine = Engine(client, settings)
    feed = SyntheticFeed(tokens=args.tokens, seed=100 + args.index, zipf_s=1.1)
    start = int(time.time() * 1000) - 3_000_000
    records = [t.record for t in feed.trades(args.trades, start, rate=2_000)]
    pool = gevent.pool.Pool(args.pool)
    calls = 0
    t0, c0 = time.perf_counter(), os.times()
    for i in range(0, len(records), args.batch):
        groups, _bad = group_records(records[i : i + args.batch])
        batch_calls = engine.calls(groups)
        calls += len(batch_calls)
        if args.apply == "calls":
            outs = engine.apply_calls(batch_calls)
        else:
            outs = list(pool.imap(engine.apply_call, batch_calls))
        for out in outs:
            assert isinstance(out, list) and not any(r.failed for r in out), out
    wall, c1 = time.perf_counter() - t0, os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    print(json.dumps({"trades": len(records), "calls": calls, "wall": wall, "cpu": cpu}))


def redis_cpu(ports: list[int]) -> list[float]:
    import redis

    out = []
    for port in ports:
        c = redis.Redis(host="127.0.0.1", port=port)
        info = c.info("cpu")
        out.append(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))
        c.close()
    return out


def flush(ports: list[int]) -> None:
    import redis

    for port in ports:
        c = redis.Redis(host="127.0.0.1", port=port)
        c.flushall()
        c.close()


def run(args: argparse.Namespace, name: str, url: str, ports: list[int], procs: int) -> None:
    flush(ports)
    cpu0 = redis_cpu(ports)
    cmd = [sys.executable, __file__, "--child", "--url", url]
    cmd += ["--trades", str(args.trades), "--tokens", str(args.tokens), "--batch", str(args.batch)]
    cmd += ["--pool", str(args.pool), "--tokens-per-call", str(args.tokens_per_call)]
    cmd += ["--apply", args.apply]
    t0 = time.perf_counter()
    children = [
        subprocess.Popen([*cmd, "--index", str(i)], stdout=subprocess.PIPE, text=True)
        for i in range(procs)
    ]
    outs = [json.loads(p.communicate()[0]) for p in children]
    wall = time.perf_counter() - t0
    cpu1 = redis_cpu(ports)
    trades = sum(o["trades"] for o in outs)
    calls = sum(o["calls"] for o in outs)
    node_cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    client_cpu = sum(o["cpu"] for o in outs)
    rate = trades / max(o["wall"] for o in outs)
    print(
        f"{name:8} apply={args.apply} procs={procs} trades={trades} rate={rate:,.0f}/s wall={wall:.1f}s "
        f"calls={calls} trades/call={trades / calls:.1f} "
        f"client_cpu={1e6 * client_cpu / trades:.0f}us/trade "
        f"redis_cpu={1e6 * sum(node_cpu) / trades:.0f}us/trade "
        f"per_node_cpu_s=[{', '.join(f'{c:.2f}' for c in node_cpu)}]",
        flush=True,
    )


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bridge_cost(args: argparse.Namespace, name: str, url: str, broker: Any, n: int) -> None:
    """CPU of one ``tradeagg bridge`` per trade, between its first and last commit."""
    from tests.support.bridge_procs import Proc, committed, env_for, produce, trade_message
    from tradeagg.devtools.synthetic import SyntheticFeed

    topic = f"bench-{name}-{time.monotonic_ns()}"
    broker.create_topic(topic, partitions=6)
    start = int(time.time() * 1000) - 600_000
    trades = SyntheticFeed(tokens=args.tokens, seed=3).trades(n, start, rate=2_000)
    produce(broker.bootstrap, topic, (trade_message(t) for t in trades))
    env = env_for(url, broker.bootstrap, topic, TRADEAGG_SHARDS="8", LOG_LEVEL="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        bridge = Proc("bridge", env, Path(tmp) / "bridge.log")
        try:
            first: tuple[int, float, float] | None = None
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                done = sum(max(0, o) for o in committed(broker.bootstrap, topic, topic, 6).values())
                if done and first is None:
                    first = (done, proc_cpu(bridge.proc.pid), time.perf_counter())
                if done >= n:
                    break
                time.sleep(0.1)
            cpu, t = proc_cpu(bridge.proc.pid), time.perf_counter()
        finally:
            bridge.terminate()
    assert first is not None and done >= n, f"bridge did not finish: {done}/{n}"
    moved = n - first[0]
    print(
        f"bridge   {name:8} trades={n} after_first_commit={moved} "
        f"rate={moved / (t - first[2]):,.0f}/s cpu={1e6 * (cpu - first[1]) / moved:.0f}us/trade",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", default="", help=argparse.SUPPRESS)
    ap.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--trades", type=int, default=20_000, help="trades per process")
    ap.add_argument("--tokens", type=int, default=2_000, help="token universe per process")
    ap.add_argument("--batch", type=int, default=2_000, help="trades per worker batch")
    ap.add_argument("--pool", type=int, default=8, help="concurrent applies per process")
    ap.add_argument("--tokens-per-call", type=int, default=64)
    ap.add_argument(
        "--apply",
        choices=["imap", "calls"],
        default="imap",
        help="imap: Engine.apply_call per call through the pool (as the worker does); "
        "calls: Engine.apply_calls, one pipeline per batch",
    )
    ap.add_argument("--procs", default="1,2", help="process counts to try")
    ap.add_argument("--only", choices=["single", "cluster"], default=None)
    ap.add_argument(
        "--bridge", type=int, default=0, help="also time one bridge over this many Kafka messages"
    )
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.cluster_server import RedisClusterServer
    from tests.support.servers import RedisServer

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        single = RedisServer(Path(tmp) / "single")
        (Path(tmp) / "single").mkdir()
        cluster = RedisClusterServer(Path(tmp) / "cluster")
        try:
            single.start()
            cluster.start()
            if args.bridge:
                from tests.support.fixtures_kafka import TansuBroker

                (Path(tmp) / "kafka").mkdir()
                broker = TansuBroker(Path(tmp) / "kafka")
                broker.start()
                try:
                    for name, url, ports in (
                        ("single", single.url, [single.port]),
                        ("cluster", cluster.url, cluster.ports),
                    ):
                        flush(ports)
                        bridge_cost(args, name, url, broker, args.bridge)
                finally:
                    broker.stop()
            for procs in [int(p) for p in args.procs.split(",") if p]:
                if args.only in (None, "single"):
                    run(args, "single", single.url, [single.port], procs)
                if args.only in (None, "cluster"):
                    run(args, "cluster", cluster.url, cluster.ports, procs)
        finally:
            single.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
