"""`tradeagg serve` under load: SSE push latency and memory, and GET /v1/top. Prints figures.

Starts its own redis-server (never the machine's 6379), a real ``tradeagg
worker`` and a real ``tradeagg serve``, loads ``--tokens`` active tokens, then:

1. times ``GET /v1/top?window=5m&limit=50`` (``--top-requests`` times, one
   after another) over those tokens: p50/p99;
2. opens ``--clients`` SSE connections (gevent greenlets on raw sockets in
   this process; most watch ``--watch`` tokens each, every ``--top-every``th the ranking
   ``top=5m:volume:50``), appends ``--rate`` trades/s to the shard streams
   for ``--seconds`` s and, for every (client, trade) pair, measures the time
   from the trade's XADD to the first event that includes it reaching the
   client. Prints p50/p99/max, events, drops and the server's RSS.

    python benchmarks/bench_serve.py --clients 200
    python benchmarks/bench_serve.py --clients 1000 --rate 2000

All processes share this machine: client parsing and the feed compete with
the server for CPU, so the latency is an upper bound for the server alone.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.bridge_procs import Proc, env_for  # noqa: E402
from tests.support.serve_procs import ServeProc  # noqa: E402
from tests.support.servers import RedisServer  # noqa: E402
from tradeagg.devtools.bench import percentile  # noqa: E402
from tradeagg.devtools.synthetic import SyntheticFeed  # noqa: E402
from tradeagg.engine.apply import Engine, now_ms  # noqa: E402
from tradeagg.engine.rank import Ranker  # noqa: E402
from tradeagg.settings import Settings  # noqa: E402
from tradeagg.store.streams import append  # noqa: E402

SHARDS = 8


class Ledger:
    """Per token: the perf_counter time each counted trade was appended (1h window count)."""

    def __init__(self) -> None:
        self.base: dict[str, int] = {}  # token -> 1h count before the flow started
        self.appended: dict[str, list[float]] = {}

    def latencies(self, token: str, before: int, now: int, at: float) -> list[float]:
        times = self.appended.get(token, [])
        base = self.base.get(token, 0)
        lo, hi = max(0, before - base), max(0, now - base)
        return [at - t for t in times[lo:hi]]


def client(port: int, path: str, ledger: Ledger, out: dict, stop: gevent.event.Event) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    seen: dict[str, int] = {}
    buf = b""
    try:
        while not stop.is_set():
            data = sock.recv(1 << 16)
            if not data:
                out["closed"] += 1
                return
            at = time.perf_counter()
            buf += data
            while True:
                start = buf.find(b"event: update\ndata: ")
                end = buf.find(b"\n\n", start)
                if start < 0 or end < 0:
                    break
                doc = json.loads(buf[start + 20 : end])
                buf = buf[end + 2 :]
                w = doc["windows"]["1h"]
                count = w["buys"] + w["sells"]
                token = doc["token"]
                out["events"] += 1
                if token in seen and ledger.base:
                    out["lat"].extend(ledger.latencies(token, seen[token], count, at))
                seen[token] = max(count, seen.get(token, 0))
            if len(buf) > 1 << 20:
                buf = buf[-(1 << 16) :]
    finally:
        sock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--watch", type=int, default=10, help="tokens per token-watching client")
    ap.add_argument("--rate", type=float, default=2000, help="trades/s appended")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--top-requests", type=int, default=20)
    ap.add_argument("--feed-hz", default="4")
    ap.add_argument("--logs", default="", help="copy serve.log and worker.log to this directory")
    ap.add_argument("--top-every", type=int, default=10, help="every Nth client ranks; 0: none")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        procs = []
        try:
            r = server.client()
            env = env_for(
                server.url,
                "127.0.0.1:1",
                "unused",
                TRADEAGG_SHARDS=str(SHARDS),
                TRADEAGG_FEED_HZ=args.feed_hz,
                TRADEAGG_STALE_AFTER="3600",  # no janitor refresh of every token mid-run
                GEVENT_MONITOR_THREAD_ENABLE="",
            )
            settings = Settings.from_env(env)
            feed = SyntheticFeed(tokens=args.tokens, seed=7, zipf_s=0.6)
            now = now_ms()
            n = args.tokens * 10
            preload = [feed.trade(now - 250_000 + (i * 240_000) // n) for i in range(n)]
            for i in range(args.tokens):  # every token active: one trade each at least
                preload[i] = dataclasses.replace(preload[i], token=feed.tokens[i])
            engine = Engine(r, settings)
            for i in range(0, len(preload), 20_000):
                engine.apply_records([t.record for t in preload[i : i + 20_000]])
            web = ServeProc(server.url, Path(tmp) / "serve.log", TRADEAGG_SHARDS=str(SHARDS))
            procs.append(web)
            worker = Proc("worker", env, Path(tmp) / "worker.log")
            procs.append(worker)
            active = sum(r.zcard(f"tradeagg:{{s{s}}}:active") for s in range(SHARDS))

            times, direct = [], []
            ranker = Ranker(r, settings)
            for _ in range(args.top_requests):  # alternate: both see the same machine load
                t0 = time.perf_counter()
                ranker.top("5m", "volume", 50)
                direct.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                status, rows = web.get("/v1/top?window=5m&limit=50")
                times.append((time.perf_counter() - t0) * 1000)
                assert status == 200 and len(rows) == 50, (status, str(rows)[:300])
            print(
                f"GET /v1/top?window=5m&limit=50 active_tokens={active} n={len(times)} "
                f"p50_ms={percentile(times, 0.5):.0f} p99_ms={percentile(times, 0.99):.0f} "
                f"in_process_top_p50_ms={percentile(direct, 0.5):.0f} "
                f"http_over_in_process_p50={percentile(times, 0.5) / percentile(direct, 0.5):.2f}",
                flush=True,
            )

            ledger = Ledger()
            out = {"events": 0, "lat": [], "closed": 0}
            stop = gevent.event.Event()
            rng = random.Random(3)
            hot = feed.tokens[:300]  # the busiest tokens (Zipf rank order)
            clients = []
            for i in range(args.clients):
                if args.top_every and i % args.top_every == args.top_every - 1:
                    path = "/v1/stream?top=5m:volume:50"
                else:
                    path = "/v1/stream?tokens=" + ",".join(rng.sample(hot, args.watch))
                clients.append(gevent.spawn(client, web.port, path, ledger, out, stop))
                if i % 50 == 49:
                    gevent.sleep(0.05)
            gevent.sleep(3)
            rss_idle = web.rss_kb()
            for t in feed.tokens:
                ledger.base[t] = 0
            counts = {}
            for t in preload:
                counts[t.token] = counts.get(t.token, 0) + 1
            ledger.base.update(counts)
            start = time.perf_counter()
            sent = 0
            while time.perf_counter() - start < args.seconds:
                due = int((time.perf_counter() - start) * args.rate) - sent
                if due > 0:
                    batch = [feed.trade(now_ms() - 20) for _ in range(due)]
                    t0 = time.perf_counter()
                    append(r, settings, batch)
                    for t in batch:
                        ledger.appended.setdefault(t.token, []).append(t0)
                    sent += due
                gevent.sleep(0.01)
            gevent.sleep(3)  # the last trades reach the clients
            rss = web.rss_kb()
            status, health = web.get("/healthz")
            stop.set()
            lat = [x * 1000 for x in out["lat"]]
            print(
                f"SSE clients={args.clients} trades={sent} rate={sent / args.seconds:.0f}/s "
                f"feed_hz={args.feed_hz} events={out['events']} measured={len(lat)} "
                f"p50_ms={percentile(lat, 0.5):.0f} p99_ms={percentile(lat, 0.99):.0f} "
                f"max_ms={max(lat, default=0):.0f} closed_by_server={out['closed']} "
                f"server_rss_idle_mb={rss_idle / 1024:.0f} server_rss_mb={rss / 1024:.0f} "
                f"sse_clients_at_end={health.get('sse_clients')} "
                f"loadavg={os.getloadavg()[0]:.1f} cpus={os.cpu_count()}",
                flush=True,
            )
            gevent.killall(clients, block=False)
        finally:
            for p in reversed(procs):
                p.terminate() if isinstance(p, Proc) else p.stop()
            server.stop()
            if args.logs:
                for name in ("serve.log", "worker.log"):
                    shutil.copy(Path(tmp) / name, Path(args.logs) / name)


if __name__ == "__main__":
    main()
