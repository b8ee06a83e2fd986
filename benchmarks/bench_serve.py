"""`tradeagg serve` under load: SSE push latency and memory, and GET /v1/top. Prints figures.

Starts its own redis-server (never the machine's 6379), a real ``tradeagg
worker`` and a real ``tradeagg serve``, loads ``--tokens`` active tokens, and
appends ``--rate`` trades/s to the shard streams for the whole run (the real
path: shard stream -> worker -> change feed -> serve). Then:

1. ``GET /v1/top?window=5m&limit=50`` from ``--top-concurrency`` clients at once,
   ``--top-requests`` in all, after one cold request: p50/p99;
2. ``--clients`` SSE connections, spread over ``--client-procs`` processes of
   lightweight clients (gevent, raw sockets, one regex per event); most watch
   ``--watch`` of the busiest tokens, every ``--top-every``th the ranking
   ``top=5m:volume:50``; with ``--measure-every N`` one client in N parses its events
   and is measured, the others only read theirs (at 1,000 clients the regex parsing
   of every event takes more CPU than the server). For ``--seconds`` s, for every
   measured (client, trade) pair the
   time from the trade's append (wall clock taken just before its XADD) to the
   client's receipt of the first event whose 1h count includes it. Prints
   p50/p99/max, events, clients dropped, the server's RSS before the clients,
   connected and at the end, and the load average; the CPU (share of a core) of
   serve, worker and Redis, Lua calls per second, Redis PING round trips
   meanwhile (what this machine leaves Redis), the CPU of the client processes
   and of this one (appender, announcement reader, pinger); and each pair split
   into stages from the change streams, read beside the server: appended -> the
   first apply after it that was announced (its last_update) -> announced (its
   ``at``) -> received (the hub's XREAD, read and write, and the client).

With ``--before TREE --after TREE`` each tree is measured in a child process
(PYTHONPATH set to it, so its ``serve`` and ``worker`` run too), the trees
alternating for ``--rounds`` rounds on the same machine; the table gives each
run and the ratios before/after of the medians.

    PYTHONPATH=$PWD python benchmarks/bench_serve.py --clients 1000 --rate 2000
    python benchmarks/bench_serve.py --before /work/main --after . --rounds 2

All processes share this machine: the clients, the appender and the worker
compete with the server for CPU, so the latency is an upper bound for the server.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import bisect  # noqa: E402
import dataclasses  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.socket  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # tests.support; tradeagg itself comes from PYTHONPATH first

SHARDS = 8
STAGES = ("total", "applied", "announced", "delivered")
EVENT_RE = re.compile(
    rb'event: update\ndata: \{"token": "([^"]+)", "at": (\d+).*?"1h": \{'
    rb'(?:"kind": "[a-z]+", "from": (?:-?\d+|null), )?"buys": (\d+), "sells": (\d+)'
)  # the window's "kind" and "from" came with the long windows (CONTRACT 2c): optional


# -- the client processes --------------------------------------------------------------------


MARK = b"event: update\n"
TOP_MARK = b"event: top\n"


def sse_client(
    port: int, path: str, out: list, stop: gevent.event.Event, totals: dict, measured: bool = True
) -> None:
    """One SSE client: (token, previous 1h count, new count, receipt time, the event's read
    instant ``at``) per event that grew. An unmeasured client only reads its stream and
    counts its events (``drain``): the server serves it alike, and the bench's own CPU
    goes to the measured ones."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    seen: dict[bytes, int] = {}
    members: set[str] = set()  # a ranking client's current members
    buf = b""
    totals["connected"] += 1
    if not measured:
        return drain(sock, stop, totals)
    for data in reads(sock, stop, totals):
        at = time.time()
        buf += data
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            continue
        blocks, buf = buf[:cut], buf[cut + 2 :]
        if TOP_MARK in blocks:  # a ranking's members changed: events in order
            parts = blocks.split(b"\n\n")
        else:
            parts = [blocks]
        for part in parts:
            if TOP_MARK in part:  # (the first may follow the response headers)
                # a token entering the ranking starts afresh: the trades it took while
                # out of it were never due to this client (its greeting is a baseline).
                # Not seen: a token that left and re-entered while this client was
                # behind by two passes (its mailbox keeps the newest top event only):
                # such trades still count as late, so the figures err on the slow side
                tokens = json.loads(part.split(b"data: ", 1)[1])["tokens"]
                for token in set(tokens) - members:
                    seen.pop(token.encode(), None)
                members = set(tokens)
                continue
            matched = 0
            for m in EVENT_RE.finditer(part):
                token, count = m.group(1), int(m.group(3)) + int(m.group(4))
                totals["events"] += 1
                matched += 1
                before = seen.get(token)
                if before is not None and count > before:
                    out.append((token.decode(), before, count, at, int(m.group(2))))
                if before is None or count > before:
                    seen[token] = count
            # an update event of a layout EVENT_RE does not know: counted, never silently lost
            totals["unparsed"] += part.count(MARK) - matched


def reads(sock: socket.socket, stop: gevent.event.Event, totals: dict) -> Iterator[bytes]:
    """What the stream brings, a read at a time, until ``stop`` or its end (then counted
    in ``totals["closed"]``); closes the socket."""
    try:
        while not stop.is_set():
            data = sock.recv(1 << 16)
            if not data:
                totals["closed"] += 1
                return
            yield data
    finally:
        sock.close()


def drain(sock: socket.socket, stop: gevent.event.Event, totals: dict) -> None:
    """Read a stream to the end, counting its update events (a mark split between two
    reads is counted once: the last bytes of a read are searched again with the next)."""
    tail = b""
    for data in reads(sock, stop, totals):
        both = tail + data
        totals["drained"] += both.count(MARK) - tail.count(MARK)
        tail = both[-(len(MARK) - 1) :]


def wait_line() -> None:
    """A line from the parent, waited for cooperatively: the clients keep reading their
    streams meanwhile (a plain readline would stop this process's loop, the events would
    pile up in the sockets and arrive late, all at once, when the interval starts)."""
    gevent.socket.wait_read(sys.stdin.fileno())
    sys.stdin.readline()


def clients_child(port: int, paths_file: str, seconds: float) -> None:
    """Runs the clients of one process; prints "ready", then (after ``seconds``) its results,
    and keeps the connections open until its stdin closes."""
    paths = json.loads(Path(paths_file).read_text())
    out: list = []
    totals = {"connected": 0, "closed": 0, "events": 0, "unparsed": 0, "drained": 0}
    stop = gevent.event.Event()
    greenlets = []
    for i, (path, measured) in enumerate(paths):
        greenlets.append(gevent.spawn(sse_client, port, path, out, stop, totals, measured))
        if i % 50 == 49:
            gevent.sleep(0.05)
    while totals["connected"] < len(paths):
        gevent.sleep(0.05)
    print("ready", flush=True)
    wait_line()  # the parent starts the measured interval
    out.clear()
    events0, drained0 = totals["events"], totals["drained"]
    gevent.sleep(seconds)
    result = {
        **totals,
        "events": totals["events"] - events0,
        "drained": totals["drained"] - drained0,
        "updates": out,
    }
    print(json.dumps(result), flush=True)
    wait_line()  # the parent has read the server's figures
    stop.set()
    gevent.killall(greenlets, block=False)


# -- one measured run --------------------------------------------------------------------------


class Appender:
    """Appends ``rate`` trades/s to the shard streams; per token the wall time of each trade."""

    def __init__(self, client, settings, feed, base: dict[str, int], rate: float) -> None:
        self.client, self.settings, self.feed, self.rate = client, settings, feed, rate
        self.base = base  # token -> its 1h count before the flow
        self.appended: dict[str, list[float]] = {}
        self.sent = 0
        self.stop = gevent.event.Event()

    def run(self) -> None:
        from tradeagg.clock import now_ms
        from tradeagg.store.streams import append

        start = time.perf_counter()
        while not self.stop.is_set():
            due = int((time.perf_counter() - start) * self.rate) - self.sent
            if due > 0:
                batch = [self.feed.trade(now_ms() - 20) for _ in range(due)]
                t0 = time.time()
                append(self.client, self.settings, batch)
                for t in batch:
                    self.appended.setdefault(t.token, []).append(t0)
                self.sent += due
            gevent.sleep(0.01)

    def appends(self, token: str, before: int, now: int) -> list[float]:
        """The append times of the trades an event took the token's 1h count over."""
        times = self.appended.get(token, [])
        base = self.base.get(token, 0)
        return times[max(0, before - base) : max(0, now - base)]


class Announcements:
    """Reads the change streams beside the server: per token, (at, last_update) of each
    announcement, to split a trade's latency into stages."""

    def __init__(self, client, shards: int) -> None:
        self.client = client
        self.names = [f"tradeagg:{{s{s}}}:changes" for s in range(shards)]
        self.by_token: dict[str, list[tuple[int, int]]] = {}
        self.count = 0  # announcements read
        self.stop = gevent.event.Event()

    def run(self) -> None:
        ids = {}
        for name in self.names:
            last = self.client.xrevrange(name, count=1)
            ids[name] = last[0][0] if last else "0-0"
        while not self.stop.is_set():
            for stream, entries in self.client.xread(ids, count=5000, block=200) or []:
                ids[stream.decode() if isinstance(stream, bytes) else stream] = entries[-1][0]
                for _id, f in entries:
                    token = f[b"token"].decode()
                    ann = (int(f[b"at"]), int(f[b"last_update"]))
                    self.by_token.setdefault(token, []).append(ann)
                    self.count += 1

    def carrying(self, token: str, t0_ms: float) -> tuple[int, int] | None:
        """The first announcement of ``token`` of an apply after ``t0_ms`` (a trade appended
        then is in that apply or a later one; both trees read at least that state)."""
        anns = self.by_token.get(token, [])
        i = bisect.bisect_left(anns, t0_ms, key=lambda a: a[1])
        return anns[i] if i < len(anns) else None


class Pinger:
    """PING round trips to the run's Redis every 50 ms: how long any Redis call waits on
    this machine meanwhile (each trade's path takes about six round trips)."""

    def __init__(self, client) -> None:
        self.client = client
        self.rtt_ms: list[float] = []
        self.stop = gevent.event.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            t0 = time.perf_counter()
            self.client.ping()
            self.rtt_ms.append((time.perf_counter() - t0) * 1000)


class ScriptClock:
    """Redis time per Lua script (the applies against the hub's reads) and tokens per call,
    from SLOWLOG (taken and reset atomically every 0.5 s; a script's sha names it: this
    tree's assembled sources). Redis 7 logs the commands a script runs too, so only
    commands of at least ``THRESHOLD_US`` are logged (a script's inner commands rarely
    are, and are not counted): scripts shorter than that are missed (``coverage``: the
    share of EVALSHA time, by INFO commandstats, seen here)."""

    THRESHOLD_US = 200

    def __init__(self, client) -> None:
        import hashlib

        from tradeagg.store.scripts import LUA_DIR, OPERATIONS, source

        def sha(text: str) -> bytes:
            return hashlib.sha1(text.encode()).hexdigest().encode()

        self.client = client
        self.names = {sha(source(n)): n for n in OPERATIONS}
        for n in ("janitor_lock", "trim_stream"):  # registered as they are (runtime/janitor)
            self.names[sha((LUA_DIR / f"{n}.lua").read_text())] = n
        self.fixed = {"apply_trades": 4, "read_window": 1}  # ARGV entries before the tokens'
        self.totals: dict[str, list[int]] = {}  # per script: calls, usec, tokens
        self.stop = gevent.event.Event()

    def take(self) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.execute_command("SLOWLOG", "GET", "1000000")
        pipe.execute_command("SLOWLOG", "RESET")
        for item in pipe.execute()[0]:
            args = item[3]
            if not (args and args[0].upper() == b"EVALSHA" and len(args) > 2):
                continue
            name = self.names.get(args[1], "other script")
            n = len(args)  # Redis keeps 32 arguments, the last saying how many more
            more = re.match(rb"\.\.\. \((\d+) more arguments\)", args[-1])
            if more:
                n += int(more.group(1)) - 1
            row = self.totals.setdefault(name, [0, 0, 0])
            row[0] += 1
            row[1] += int(item[2])
            row[2] += n - 3 - int(args[2]) - self.fixed.get(name, 0)

    def run(self) -> None:
        self.client.config_set("slowlog-max-len", 100_000)
        self.client.config_set("slowlog-log-slower-than", self.THRESHOLD_US)
        self.client.slowlog_reset()
        while not self.stop.wait(0.5):
            self.take()
        self.take()
        self.client.config_set("slowlog-log-slower-than", -1)

    def figures(self, seconds: float, evalsha_usec: int) -> dict:
        """Per script: ms/s, calls/s, tokens per call, usec per token; the coverage."""
        out: dict = {
            name: {
                "ms_per_s": usec / 1000 / seconds,
                "calls_per_s": calls / seconds,
                "tokens_per_call": toks / calls if calls else 0,
                "usec_per_token": usec / toks if toks else float("nan"),
            }
            for name, (calls, usec, toks) in self.totals.items()
        }
        seen = sum(row[1] for row in self.totals.values())
        out["coverage"] = seen / evalsha_usec if evalsha_usec else float("nan")
        return out


def stages(pairs: list[tuple[float, int, tuple[int, int] | None, float]]) -> dict:
    """Per stage p50/p99 (ms) over (append time s, event's instant ms, the first announcement
    of an apply after the append, receipt time s) pairs (those whose announcement came
    before the receipt); also the mean stages of the slowest 1 %."""
    rows = []
    for t0, _at, ann, recv in pairs:
        t0_ms, recv_ms = t0 * 1000, recv * 1000
        if ann is None or ann[0] > recv_ms:
            continue
        ann_at, last_update = ann
        rows.append(
            (
                recv_ms - t0_ms,
                last_update - t0_ms,  # append -> the apply (worker: read, batch, Lua)
                ann_at - last_update,  # that apply -> announced (feed greenlet, coalescing)
                recv_ms - ann_at,  # announced -> received (hub: XREAD, read, write; client)
            )
        )
    names = STAGES
    out: dict = {"n": len(rows)}
    for i, name in enumerate(names):
        col = [r[i] for r in rows]
        out[name] = {"p50": pct(col, 0.5), "p99": pct(col, 0.99)}
    rows.sort()
    tail = rows[int(0.99 * len(rows)) :]
    out["slowest_1pct_mean"] = {
        name: statistics.fmean(r[i] for r in tail) if tail else float("nan")
        for i, name in enumerate(names)
    }
    return out


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def top_phase(port: int, requests: int, concurrency: int) -> dict:
    """One request (a cold start), then ``requests`` GET /v1/top from ``concurrency`` clients
    at once: their ms; answers other than 200 with 50 rows are counted as errors."""
    times: list[float] = []
    left = [requests]
    errors = [0]

    def one() -> float:
        t0 = time.perf_counter()
        status, body = get(port, "/v1/top?window=5m&limit=50")
        if status != 200 or len(json.loads(body)) != 50:
            errors[0] += 1
        return (time.perf_counter() - t0) * 1000

    def one_client() -> None:
        while left[0] > 0:
            left[0] -= 1
            times.append(one())

    first = one() if requests else float("nan")
    gevent.joinall([gevent.spawn(one_client) for _ in range(concurrency)], raise_error=True)
    return {
        "n": len(times),
        "first_ms": first,
        "p50_ms": pct(times, 0.5),
        "p99_ms": pct(times, 0.99),
        "max_ms": max(times, default=float("nan")),
        "errors": errors[0],
    }


def redis_cpu(client) -> float:
    """Seconds of CPU the Redis server has used (its main thread and the rest)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds this process (the appender, the announcement reader, the pinger) used."""
    t = os.times()
    return t.user + t.system


def script_calls(client) -> int:
    """Lua calls Redis has run (applies and reads alike)."""
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


def command_usec(client) -> dict[str, tuple[int, int]]:
    """Per command: (calls, usec) Redis has counted. A script's own commands are counted
    under their names too, and inside its EVALSHA's usec."""
    stats = client.info("commandstats")
    return {k[8:]: (v["calls"], v["usec"]) for k, v in stats.items() if k.startswith("cmdstat_")}


def busiest(before: dict, after: dict, seconds: float, n: int = 6) -> list[tuple[str, float, int]]:
    """The ``n`` commands with the most Redis time meanwhile: (name, ms per s, usec per call)."""
    rows = []
    for name, (calls, usec) in after.items():
        c0, u0 = before.get(name, (0, 0))
        if calls > c0:
            rows.append((name, (usec - u0) / 1000 / seconds, round((usec - u0) / (calls - c0))))
    return sorted(rows, key=lambda r: -r[1])[:n]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(args: argparse.Namespace) -> dict:
    import tradeagg
    from tests.support.bridge_procs import Proc, env_for
    from tests.support.serve_procs import ServeProc
    from tests.support.servers import RedisServer
    from tradeagg.devtools.synthetic import SyntheticFeed
    from tradeagg.engine.apply import Engine, now_ms
    from tradeagg.settings import Settings

    fig: dict = {"tree": str(Path(tradeagg.__file__).resolve().parent.parent)}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        procs: list = []
        children: list[subprocess.Popen] = []
        appender = None
        try:
            r = server.client()
            env = env_for(
                server.url,
                "127.0.0.1:1",
                "unused",
                TRADEAGG_SHARDS=str(SHARDS),
                TRADEAGG_FEED_HZ=args.feed_hz,
                # by default no janitor refresh of every token mid-run; --janitor S: a pass
                # every S s with the default staleness (its load is part of the figures)
                TRADEAGG_STALE_AFTER="3600" if not args.janitor else "10",
                TRADEAGG_MAINTENANCE_INTERVAL=str(args.janitor or 60),
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
            web = ServeProc(
                server.url,
                Path(tmp) / "serve.log",
                TRADEAGG_SHARDS=str(SHARDS),
                TRADEAGG_FEED_HZ=args.feed_hz,
                GEVENT_MONITOR_THREAD_ENABLE="",
            )
            procs.append(web)
            worker = Proc("worker", env, Path(tmp) / "worker.log")
            procs.append(worker)
            fig["active_tokens"] = sum(r.zcard(f"tradeagg:{{s{s}}}:active") for s in range(SHARDS))
            base: dict[str, int] = {}
            for t in preload:
                base[t.token] = base.get(t.token, 0) + 1
            appender = Appender(r, settings, feed, base, args.rate)
            flow = gevent.spawn(appender.run)
            announcements = Announcements(server.client(), SHARDS)
            listening = gevent.spawn(announcements.run)
            gevent.sleep(2)  # the flow reaches the server

            fig["top"] = top_phase(web.port, args.top_requests, args.top_concurrency)
            fig["rss_before_clients_mb"] = web.rss_kb() / 1024

            rng = random.Random(3)
            hot = feed.tokens[:300]  # the busiest tokens (Zipf rank order)
            paths = []
            for i in range(args.clients):
                # whole runs of --top-every clients, so that ranking clients are measured too
                measured = (i // max(args.top_every, 1)) % args.measure_every == 0
                if args.top_every and i % args.top_every == args.top_every - 1:
                    paths.append(("/v1/stream?top=5m:volume:50", measured))
                else:
                    watched = ",".join(rng.sample(hot, args.watch))
                    paths.append(("/v1/stream?tokens=" + watched, measured))
            for k in range(args.client_procs):
                share = Path(tmp) / f"paths{k}.json"
                share.write_text(json.dumps(paths[k :: args.client_procs]))
                cmd = [
                    sys.executable,
                    __file__,
                    "--clients-child",
                    str(web.port),
                    str(share),
                    str(args.seconds),
                ]
                children.append(
                    subprocess.Popen(
                        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/tmp"
                    )
                )
            for c in children:
                assert c.stdout.readline().strip() == "ready", "a client process failed"
            # every client has its first (baseline) events; with --settle, the processes
            # are past the connections' burst (1,000 at once: the first ~10 s run slow)
            gevent.sleep(args.settle)
            fig["rss_connected_mb"] = web.rss_kb() / 1024
            sent0, t0, announced0 = appender.sent, time.perf_counter(), announcements.count
            redis0, calls0, usec0 = redis_cpu(r), script_calls(r), command_usec(r)
            pinger = Pinger(server.client())
            pinging = gevent.spawn(pinger.run)
            scripts = ScriptClock(server.client())
            clocking = gevent.spawn(scripts.run)
            serve0, worker0 = cpu_s(web.proc.pid), cpu_s(worker.proc.pid)
            clients0, self0 = sum(cpu_s(c.pid) for c in children), own_cpu_s()
            for c in children:
                c.stdin.write("go\n")
                c.stdin.flush()
            results = [json.loads(c.stdout.readline()) for c in children]
            fig["rate"] = (appender.sent - sent0) / (time.perf_counter() - t0)
            fig["announced_per_s"] = (announcements.count - announced0) / (time.perf_counter() - t0)
            fig["redis_cpu"] = (redis_cpu(r) - redis0) / (time.perf_counter() - t0)
            fig["lua_calls_per_s"] = (script_calls(r) - calls0) / (time.perf_counter() - t0)
            fig["redis_ms_per_s"] = busiest(usec0, command_usec(r), time.perf_counter() - t0)
            pinger.stop.set()
            pinging.join()
            scripts.stop.set()
            clocking.join()
            usec1 = command_usec(r)
            evalsha = usec1.get("evalsha", (0, 0))[1] - usec0.get("evalsha", (0, 0))[1]
            fig["scripts"] = scripts.figures(time.perf_counter() - t0, evalsha)
            trades = max(1, appender.sent - sent0)
            # Redis' time per trade appended: all its CPU, and its scripts' (commandstats)
            fig["redis_cpu_us_per_trade"] = (redis_cpu(r) - redis0) * 1e6 / trades
            fig["evalsha_us_per_trade"] = evalsha / trades
            fig["ping_ms"] = {"p50": pct(pinger.rtt_ms, 0.5), "p99": pct(pinger.rtt_ms, 0.99)}
            fig["serve_cpu"] = (cpu_s(web.proc.pid) - serve0) / (time.perf_counter() - t0)
            fig["worker_cpu"] = (cpu_s(worker.proc.pid) - worker0) / (time.perf_counter() - t0)
            clients1 = sum(cpu_s(c.pid) for c in children)
            fig["clients_cpu"] = (clients1 - clients0) / (time.perf_counter() - t0)
            fig["bench_cpu"] = (own_cpu_s() - self0) / (time.perf_counter() - t0)
            fig["rss_end_mb"] = web.rss_kb() / 1024
            _, health = get(web.port, "/healthz")
            fig["sse_clients_at_end"] = json.loads(health).get("sse_clients")
            for c in children:
                c.stdin.close()
                try:
                    c.wait(30)
                except subprocess.TimeoutExpired:  # its figures are in hand: 1,000 sockets
                    c.kill()  # closing may outlast the wait on a loaded machine
                    c.wait()
            appender.stop.set()
            announcements.stop.set()
            flow.join()
            listening.join()
            lat, pairs = [], []
            for res in results:
                for token, before, count, at, read_at in res["updates"]:
                    for t0 in appender.appends(token, before, count):
                        lat.append((at - t0) * 1000)
                        pairs.append((t0, read_at, announcements.carrying(token, t0 * 1000), at))
            fig["stages"] = stages(pairs)
            third = args.seconds / 3
            starts = [min(p[3] for p in pairs)] if pairs else [0.0]
            fig["p99_by_third"] = [
                pct(
                    [
                        (p[3] - p[0]) * 1000
                        for p in pairs
                        if starts[0] + k * third <= p[3] < starts[0] + (k + 1) * third
                    ],
                    0.99,
                )
                for k in range(3)
            ]
            fig["sse"] = {
                "clients": sum(res["connected"] for res in results),
                "closed_by_server": sum(res["closed"] for res in results),
                "events": sum(res["events"] + res.get("drained", 0) for res in results),
                "measured_clients": sum(1 for _, m in paths if m),
                "unparsed": sum(res.get("unparsed", 0) for res in results),
                "measured": len(lat),
                "p50_ms": pct(lat, 0.5),
                "p99_ms": pct(lat, 0.99),
                "max_ms": max(lat, default=float("nan")),
            }
            fig["loadavg"] = os.getloadavg()[0]
        finally:
            if appender is not None:
                appender.stop.set()
            for c in children:
                if c.poll() is None:
                    c.kill()
            for p in reversed(procs):
                p.terminate() if isinstance(p, Proc) else p.stop()
            server.stop()
            if args.logs:
                for name in ("serve.log", "worker.log"):
                    shutil.copy(Path(tmp) / name, Path(args.logs) / name)
    return fig


def line(fig: dict, args: argparse.Namespace) -> str:
    t, s = fig["top"], fig["sse"]
    return (
        f"GET /v1/top?window=5m&limit=50 active_tokens={fig['active_tokens']} n={t['n']} "
        f"concurrency={args.top_concurrency} p50_ms={t['p50_ms']:.0f} p99_ms={t['p99_ms']:.0f} "
        f"max_ms={t['max_ms']:.0f} errors={t['errors']} first_request_ms={t['first_ms']:.0f}\n"
        f"SSE clients={s['clients']} measured_clients={s.get('measured_clients', s['clients'])} "
        f"rate={fig['rate']:.0f}/s feed_hz={args.feed_hz} "
        f"announced={fig.get('announced_per_s', float('nan')):.0f}/s "
        f"seconds={args.seconds} events={s['events']} unparsed={s.get('unparsed', 0)} "
        f"measured={s['measured']} "
        f"p50_ms={s['p50_ms']:.0f} p99_ms={s['p99_ms']:.0f} max_ms={s['max_ms']:.0f} "
        f"closed_by_server={s['closed_by_server']} sse_clients_at_end={fig['sse_clients_at_end']} "
        f"server_rss_mb before_clients={fig['rss_before_clients_mb']:.0f} "
        f"connected={fig['rss_connected_mb']:.0f} end={fig['rss_end_mb']:.0f} "
        f"cpu_of_a_core serve={fig['serve_cpu']:.2f} worker={fig['worker_cpu']:.2f} "
        f"redis={fig['redis_cpu']:.2f} clients={fig.get('clients_cpu', float('nan')):.2f} "
        f"bench={fig.get('bench_cpu', float('nan')):.2f} lua_calls_per_s={fig['lua_calls_per_s']:.0f} "
        f"serve_cpu_ms_per_1k_events={per_k(fig['serve_cpu'], fig, args)} "
        f"redis_ping_ms p50={fig['ping_ms']['p50']:.1f} p99={fig['ping_ms']['p99']:.0f} "
        f"loadavg={fig['loadavg']:.1f} cpus={os.cpu_count()} tree={fig['tree']}\n"
        + "redis_ms_per_s (usec per call) "
        + " ".join(f"{n}={ms:.0f}({u})" for n, ms, u in fig.get("redis_ms_per_s", []))
        + "\n"
        + script_line(fig)
        + stage_line(fig)
    )


def script_line(fig: dict) -> str:
    sc = fig.get("scripts")
    if not sc:
        return ""
    parts = [
        f"{name}={v['ms_per_s']:.0f}ms/s calls={v['calls_per_s']:.0f}/s "
        f"tokens_per_call={v['tokens_per_call']:.1f} usec_per_token={v['usec_per_token']:.0f}"
        for name, v in sc.items()
        if name != "coverage"
    ]
    rw = sc.get("read_window") or {"calls_per_s": 0, "tokens_per_call": 0}
    per_ann = rw["calls_per_s"] * rw["tokens_per_call"] / max(fig.get("announced_per_s", 0), 1e-9)
    return (
        f"read_tokens_per_announcement={per_ann:.2f} "
        f"redis_per_trade_us cpu={fig['redis_cpu_us_per_trade']:.0f} "
        f"evalsha={fig['evalsha_us_per_trade']:.0f} | scripts (slowlog, "
        f"coverage={sc['coverage']:.2f}): "
        + "; ".join(parts)
        + "\n"
    )


def per_k(cpu: float, fig: dict, args: argparse.Namespace) -> str:
    """CPU ms per 1,000 events the clients received."""
    events = fig["sse"]["events"]
    return f"{1e6 * cpu * args.seconds / events:.1f}" if events else "nan"


def stage_line(fig: dict) -> str:
    st = fig.get("stages")
    if not st or not st["n"]:
        return "stages: none measured"
    parts = [f"{k} p50={st[k]['p50']:.0f} p99={st[k]['p99']:.0f}" for k in STAGES]
    tail = " ".join(f"{k}={st['slowest_1pct_mean'][k]:.0f}" for k in STAGES)
    thirds = " ".join(f"{x:.0f}" for x in fig["p99_by_third"])
    return (
        f"stages_ms n={st['n']} " + "; ".join(parts) + f" | slowest 1% mean: {tail}"
        f" | total p99 by third of the interval: {thirds}"
    )


def run_child(tree: str, argv: list[str]) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    cmd = [sys.executable, __file__, "--child", *argv]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/tmp")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"run of {tree} failed (exit {done.returncode}): {done.stderr[-1500:]}", flush=True)
        return None


def compare(args: argparse.Namespace, argv: list[str]) -> None:
    trees = {"before": args.before, "after": args.after}
    got: dict[str, list[dict]] = {name: [] for name in trees}
    for r in range(args.rounds):
        order = list(trees.items()) if r % 2 else list(reversed(trees.items()))
        for name, tree in order:
            fig = run_child(tree, argv)
            if fig is not None:
                got[name].append(fig)
                print(f"[{name}] " + line(fig, args).replace("\n", f"\n[{name}] "), flush=True)
    if not (got["before"] and got["after"]):
        return

    def med(name: str, part: str, key: str) -> float:
        return statistics.median((f[part] if part else f)[key] for f in got[name])

    def script(name: str, key: str) -> Callable[[dict], float]:
        return lambda f: (f.get("scripts", {}).get(name) or {}).get(key, float("nan"))

    for label, get_ in (
        ("redis cpu us per trade", lambda f: f.get("redis_cpu_us_per_trade", float("nan"))),
        ("evalsha us per trade", lambda f: f.get("evalsha_us_per_trade", float("nan"))),
        ("apply_trades ms/s", script("apply_trades", "ms_per_s")),
        ("read_window ms/s", script("read_window", "ms_per_s")),
        ("read_window tokens/s", lambda f: script("read_window", "calls_per_s")(f)
         * script("read_window", "tokens_per_call")(f)),
        # the reads' work whatever the machine's load did to the rate: tokens read (hub,
        # greetings, ranking passes) per token announced
        ("read_window tokens per announcement", lambda f: script("read_window", "calls_per_s")(f)
         * script("read_window", "tokens_per_call")(f) / max(f.get("announced_per_s", 0), 1e-9)),
    ):
        b = statistics.median(get_(f) for f in got["before"])
        a = statistics.median(get_(f) for f in got["after"])
        print(f"{label}: before {b:.4g} after {a:.4g} before/after {b / a if a else float('nan'):.2f}")

    for part, key in (
        ("sse", "p50_ms"),
        ("sse", "p99_ms"),
        ("sse", "events"),
        ("", "redis_cpu"),
        ("", "serve_cpu"),
        ("", "worker_cpu"),
        ("", "lua_calls_per_s"),
        ("top", "p50_ms"),
        ("top", "p99_ms"),
    ):
        b, a = med("before", part, key), med("after", part, key)
        ratio = b / a if a else float("nan")
        print(f"{part or 'all'} {key}: before {b:.3g} after {a:.3g} before/after {ratio:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--client-procs", type=int, default=2, help="processes running the clients")
    ap.add_argument("--watch", type=int, default=10, help="tokens per token-watching client")
    ap.add_argument("--rate", type=float, default=2000, help="trades/s appended")
    ap.add_argument("--seconds", type=float, default=15, help="measured SSE interval")
    ap.add_argument(
        "--settle", type=float, default=2,
        help="s between the clients' connection and the measured interval",
    )
    ap.add_argument("--top-requests", type=int, default=40)
    ap.add_argument("--top-concurrency", type=int, default=8)
    ap.add_argument("--feed-hz", default="4")
    ap.add_argument(
        "--janitor", type=float, default=0, help="janitor pass every N s (0: no refresh)"
    )
    ap.add_argument("--logs", default="", help="copy serve.log and worker.log to this directory")
    ap.add_argument("--top-every", type=int, default=10, help="every Nth client ranks; 0: none")
    ap.add_argument(
        "--measure-every",
        type=int,
        default=1,
        help="every Nth client parses its events and is measured; the rest only read theirs",
    )
    ap.add_argument("--before", default="", help="code tree before the change (PYTHONPATH)")
    ap.add_argument("--after", default=".", help="code tree after the change (PYTHONPATH)")
    ap.add_argument("--rounds", type=int, default=1, help="runs per tree, alternating")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    if len(sys.argv) == 5 and sys.argv[1] == "--clients-child":
        clients_child(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
        return
    args = ap.parse_args()
    if args.child:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop its processes on the way
        print(json.dumps(measure(args)), flush=True)
        return
    if args.before:
        skip = {"--before", "--after", "--rounds"}
        argv, it = [], iter(sys.argv[1:])
        for a in it:
            if a.split("=")[0] in skip:
                if "=" not in a:
                    next(it, None)
                continue
            argv.append(a)
        compare(args, argv)
        return
    fig = measure(args)
    print(line(fig, args), flush=True)
    if fig["sse"].get("unparsed") or (args.clients and not fig["sse"]["events"]):
        sys.exit(
            "bench_serve: update events were received that EVENT_RE could not read, or "
            "none at all: the figures above measure nothing (has the event layout changed?)"
        )


if __name__ == "__main__":
    main()
