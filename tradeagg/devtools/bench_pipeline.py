"""End-to-end benchmark: synthetic trades into Kafka until visible in the aggregates.

``run_e2e(settings, trades, tokens, rate)`` (called by ``tradeagg bench --mode e2e`` and
``benchmarks/bench_e2e.py``):

* ``rate=None`` (throughput): ``trades`` synthetic trades over ``tokens`` Zipf
  tokens, stamped over the recent past, one message per trade, produced as
  fast as possible; the clock runs from the first produce until every trade
  is in its token's list (LLEN, polled every 250 ms: the list and the
  aggregates are written by the same Lua call, so "in the list" is "visible").
* ``rate=R`` (latency): the same feed paced at R trades/s, stamped when sent,
  evenly (not in 400 ms bursts), plus a probe trade every 50 ms on one of four
  probe tokens; a poller sees each probe arrive (LLEN every ~2 ms) and the latency is produce call ->
  visible, so it includes producer linger, broker, bridge, stream, worker, Lua.

It uses the Kafka and Redis of ``settings`` with a topic and group of its own
(``<topic>-bench-<time>``, created with 4 partitions), and starts one
``tradeagg bridge`` and ``workers`` ``tradeagg worker`` subprocesses unless
``spawn=False`` (then they must already run on that topic). Everything runs
on this machine: figures include the CPU the broker and Redis take.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from tradeagg.clock import now_ms
from tradeagg.contract.keys import TokenKeys
from tradeagg.devtools.bench import percentile
from tradeagg.devtools.kafkatools import Sender, create_topic, encode
from tradeagg.devtools.synthetic import SyntheticFeed, past_trades
from tradeagg.errors import TradeaggError
from tradeagg.runtime.hub import direct
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

PROBES = ["0x" + f"{0xBE7C000 + k:040x}" for k in range(4)]
PROBE_EVERY_S = 0.05


def _spawn(command: str, env: dict[str, str], log_dir: str) -> subprocess.Popen:
    log = open(os.path.join(log_dir, f"{command}.{len(os.listdir(log_dir))}.log"), "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "tradeagg", command], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _wait(check: Any, timeout: float, what: str, every: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TradeaggError(f"bench: timed out waiting for {what}")
        time.sleep(every)


def _quiet(done: int) -> None:
    """Default progress callback: report nothing."""


def _llen(client: Any, tokens: list[str]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for token in tokens:
        pipe.llen(TokenKeys(token).trades)
    return [int(n) for n in pipe.execute()]


def run_e2e(
    settings: Settings,
    trades: int,
    tokens: int,
    rate: float | None,
    *,
    spawn: bool = True,
    workers: int = 1,
    log_dir: str = "",
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Produce synthetic trades to Kafka and measure until visible; returns figures.

    ``on_progress(n)`` is called now and then with the trades visible (or sent, paced).
    """
    report = on_progress or _quiet
    stamp = int(time.time())
    topic = f"{settings.kafka_topic}-bench-{stamp}"
    group = f"{settings.kafka_group}-bench-{stamp}"
    bench = Settings(**{**settings.__dict__, "kafka_topic": topic, "kafka_group": group})
    client = connect(bench)
    procs: list[subprocess.Popen] = []
    if spawn:
        create_topic(bench, bench.topic, 4, "bench", blocking=direct)
        env = dict(
            os.environ,
            TRADEAGG_KAFKA_TOPIC=topic,
            TRADEAGG_KAFKA_GROUP=group,
            REDIS_URL=bench.redis_url,
            KAFKA_BOOTSTRAP_SERVERS=bench.kafka_bootstrap_servers,
            KAFKA_URL=bench.kafka_url,
        )
        log_dir = log_dir or os.path.join("/tmp", f"tradeagg-bench-{stamp}")
        os.makedirs(log_dir, exist_ok=True)
        procs.append(_spawn("bridge", env, log_dir))
        procs += [_spawn("worker", env, log_dir) for _ in range(workers)]
    sender = Sender(bench, blocking=direct)
    try:
        # warm-up: the bridge has joined its group and the worker applies
        warm = PROBES[0]
        before = _llen(client, [warm])[0]
        sender.send([_probe(warm, "warm", now_ms())])
        sender.flush(30)
        _wait(lambda: _llen(client, [warm])[0] > before, 60, "the pipeline to warm up", 0.05)
        if rate is None:
            figures = _throughput(bench, client, sender, trades, tokens, report)
        else:
            figures = _latency(bench, client, sender, trades, tokens, rate, report)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    figures.update({"topic": bench.topic, "workers": workers if spawn else None, "logs": log_dir})
    return figures


def _probe(token: str, tag: str, ts: int) -> tuple[bytes, bytes, int]:
    msg = {
        "id": f"probe-{tag}-{time.monotonic_ns()}",
        "token": token,
        "side": "buy",
        "amount": "1",
        "quote": "1",
        "price": "1",
        "ts": ts,
        "trader": token,
    }
    return token.encode(), json.dumps(msg).encode(), 1


def _throughput(
    s: Settings,
    client: Any,
    sender: Sender,
    n: int,
    tokens: int,
    report: Callable[[int], None],
) -> dict[str, Any]:
    trades = past_trades(n, tokens, seed=int(time.time()), now=now_ms())
    names = sorted({t.token for t in trades})
    want = len({t.id for t in trades})
    base = sum(_llen(client, names))
    messages = list(encode(trades, per_block=False))
    t0 = time.monotonic()
    sender.send(messages)
    sender.flush(120)
    produced = time.monotonic() - t0

    def all_visible() -> bool:
        visible = sum(_llen(client, names)) - base
        report(visible)
        return visible >= want

    _wait(all_visible, 600, "every trade visible")
    took = time.monotonic() - t0
    return {
        "mode": "throughput",
        "trades": n,
        "tokens": len(names),
        "seconds": round(took, 2),
        "trades_per_s": round(n / took),
        "produce_seconds": round(produced, 2),
    }


def _latency(
    s: Settings,
    client: Any,
    sender: Sender,
    n: int,
    tokens: int,
    rate: float,
    report: Callable[[int], None],
) -> dict[str, Any]:
    sent: dict[str, list[float]] = {p: [] for p in PROBES}
    seen = dict(zip(PROBES, _llen(client, PROBES), strict=True))
    start_len = dict(seen)
    latencies: list[float] = []
    next_probe = time.monotonic()
    k = 0
    t0 = time.monotonic()
    count = 0

    def poll_probes() -> None:
        now = time.monotonic()
        for token, length in zip(PROBES, _llen(client, PROBES), strict=True):
            for i in range(seen[token], length):
                latencies.append((now - sent[token][i - start_len[token]]) * 1000)
            seen[token] = max(seen[token], length)

    feed = SyntheticFeed(tokens=tokens, seed=int(time.time()))
    while count < n:  # steady pace: trade i is sent at t0 + i / rate, stamped when sent
        now = time.monotonic()
        due = min(n, int((now - t0) * rate) + 1)
        if due > count:
            stamp = now_ms()
            batch = [feed.trade(stamp) for _ in range(due - count)]
            sender.send(encode(batch, per_block=False))
            count = due
        if now >= next_probe:
            token = PROBES[k % len(PROBES)]
            sent[token].append(time.monotonic())
            sender.send([_probe(token, str(k), now_ms())])
            k += 1
            next_probe += PROBE_EVERY_S
        sender.producer.poll(0)
        poll_probes()
        report(count)
        time.sleep(0.001)
    took = time.monotonic() - t0
    deadline = time.monotonic() + 30
    while any(seen[p] - start_len[p] < len(sent[p]) for p in PROBES):
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
        poll_probes()
    sender.flush(30)
    return {
        "mode": "latency",
        "trades": count,
        "tokens": tokens,
        "rate_asked": rate,
        "rate_achieved": round(count / took),
        "probes": len(latencies),
        "probes_lost": k - len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p90_ms": round(percentile(latencies, 0.90), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
    }
