"""Engine benchmark: synthetic trades straight into the shard streams, applied by workers.

The streams are filled first, then the shard consumers (the same code as
``tradeagg worker``) run in this process until every entry is acknowledged.
Reported: trades/s applied, Redis CPU share over the run (from INFO cpu), and
p50/p99 latency of a batch (XREADGROUP result -> XACK). With ``verify`` the
aggregates of that many tokens are compared with the brute-force reference.

The default event clock with trades spread over 80 minutes of event time
exercises the steady state of a live service in seconds: every window
slides, every trade is added once and expires from every window, and lists
are trimmed. The wall clock puts all trades in the last minute instead.
"""

from __future__ import annotations

import random
import resource
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gevent
import gevent.pool

from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.engine.reference import windows as reference_windows
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.runtime.consumer import ShardConsumer
from tradeagg.settings import Settings
from tradeagg.store.connection import is_cluster
from tradeagg.store.stream import unacked
from tradeagg.store.streams import append


@dataclass
class BenchConfig:
    trades: int = 200_000
    tokens: int = 2_000
    span_s: float = 4_800.0
    seed: int = 7
    verify: int = 50
    timeout_s: float = 600.0


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by rank; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _redis_cpu(client: Any) -> float:
    """CPU seconds Redis has used, summed over every primary of a cluster."""
    if is_cluster(client):
        infos = client.info("cpu", target_nodes=client.PRIMARIES).values()
    else:
        infos = [client.info("cpu")]
    return sum(float(i["used_cpu_user"]) + float(i["used_cpu_sys"]) for i in infos)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_trades(cfg: BenchConfig, clock: str) -> list[Trade]:
    feed = SyntheticFeed(tokens=cfg.tokens, seed=cfg.seed)
    span_ms = cfg.span_s * 1000 if clock == "event" else 55_000
    start = now_ms() - int(span_ms) - 1_000
    return feed.trades(cfg.trades, start, rate=cfg.trades / (span_ms / 1000))


def backlog(client: Any, shards: int) -> int:
    """Entries not yet acknowledged (undelivered lag + pending) over all shards."""
    return unacked(client, shards)


def batch_entries(cfg: BenchConfig, settings: Settings) -> int:
    """Entries per XREADGROUP so that one shard batch spans at most 10 minutes of event time.

    Compressing 80 minutes into seconds would otherwise let one batch hold more
    than the longest window of a token's trades, and the older ones would be
    refused as late instead of measured.
    """
    if settings.clock != "event":
        return settings.read_count
    per_shard_per_min = cfg.trades / settings.shards / (cfg.span_s / 60)
    return max(1, min(settings.read_count, int(10 * per_shard_per_min / settings.entry_trades)))


def _handled(counters: dict[str, int]) -> int:
    return sum(counters.get(k, 0) for k in ("trades.applied", "trades.duplicate", "trades.late"))


def run_engine(
    client: Any,
    settings: Settings,
    cfg: BenchConfig,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Fill, drain, measure, verify. ``client`` must point at an empty Redis database.

    ``on_progress(n)`` is called while draining with the trades handled so far.
    """
    settings = replace(settings, read_count=batch_entries(cfg, settings))
    trades = make_trades(cfg, settings.clock)
    t0 = time.perf_counter()
    for i in range(0, len(trades), 20_000):
        append(client, settings, trades[i : i + 20_000])
    fill_s = time.perf_counter() - t0
    for shard in range(settings.shards):
        client.xgroup_create(keys.stream(shard), keys.STREAM_GROUP, id="0", mkstream=True)

    metrics = MemoryMetrics()
    engine = Engine(client, settings)
    pool = gevent.pool.Pool(settings.worker_pool)
    stopping = gevent.event.Event()
    consumers = [
        ShardConsumer(s, client, engine, pool, settings, metrics, "bench", stopping.is_set)
        for s in range(settings.shards)
    ]
    cpu0, own0, t0 = _redis_cpu(client), _own_cpu(), time.perf_counter()
    greenlets = [gevent.spawn(c.run) for c in consumers]
    deadline = t0 + cfg.timeout_s
    while backlog(client, settings.shards) and time.perf_counter() < deadline:
        gevent.sleep(0.05)
        if on_progress:
            on_progress(_handled(metrics.counters))
    elapsed = time.perf_counter() - t0
    cpu, own = _redis_cpu(client) - cpu0, _own_cpu() - own0
    stopping.set()
    gevent.joinall(greenlets, timeout=settings.block_ms / 1000 + 5)
    left = backlog(client, settings.shards)

    c = metrics.counters
    batches = metrics.timings.get("batch.latency", [])
    calls = metrics.timings.get("apply.latency", [])
    out: dict[str, Any] = {
        "mode": "engine",
        "clock": settings.clock,
        "metrics": settings.metrics,
        "windows": ",".join(w.label for w in settings.windows),
        "prev_windows": settings.prev_metrics,
        "trades": len(trades),
        "tokens": cfg.tokens,
        "shards": settings.shards,
        "entry_trades": settings.entry_trades,
        "read_count": settings.read_count,
        "fill_s": round(fill_s, 3),
        "elapsed_s": round(elapsed, 3),
        "trades_per_s": round(len(trades) / elapsed) if elapsed else None,
        "applied": c.get("trades.applied", 0),
        "duplicates": c.get("trades.duplicate", 0),
        "late": c.get("trades.late", 0),
        "unacked_left": left,
        "redis_cpu_share": round(cpu / elapsed, 3) if elapsed else None,
        "worker_cpu_share": round(own / elapsed, 3) if elapsed else None,
        "batches": len(batches),
        "batch_p50_ms": round(percentile(batches, 0.5), 2),
        "batch_p99_ms": round(percentile(batches, 0.99), 2),
        "lua_calls": len(calls),
        "lua_call_p50_ms": round(percentile(calls, 0.5), 2),
        "lua_call_p99_ms": round(percentile(calls, 0.99), 2),
        "trades_per_lua_call": round(c.get("trades.applied", 0) / len(calls), 1) if calls else None,
    }
    if cfg.verify:
        out.update(verify(client, settings, trades, cfg.verify, cfg.seed))
    return out


def verify(
    client: Any, settings: Settings, trades: list[Trade], n: int, seed: int
) -> dict[str, Any]:
    """Compare ``n`` tokens (the busiest half, random others) with the brute-force reference.

    A trade older than the longest exact window when it arrives is dropped for every
    window (CONTRACT §2c), bucketed ones included; which were, depends on how the
    worker cut the streams into calls. The reference leaves out the trades surely
    late (older than that window before the newest trade ahead of them in the
    stream); a token with a trade that may or may not have been (a newer one close
    behind it, within one read of the streams, could have shared its call) has its
    bucketed windows left out of the comparison (``unverified_bucketed``)."""
    by_token: dict[str, list[Trade]] = {}
    newest: dict[str, int] = {}
    horizon = settings.exact_longest_ms
    for t in trades:
        ahead = newest.get(t.token)
        if ahead is not None and t.ts <= ahead - horizon:
            continue  # surely late: not applied
        by_token.setdefault(t.token, []).append(t)
        newest[t.token] = t.ts if ahead is None else max(ahead, t.ts)
    per_read = settings.read_count * settings.entry_trades * settings.shards  # stream positions
    unsure = late_unsure(trades, horizon, per_read) if settings.long_windows else set()
    ranked = sorted(by_token, key=lambda k: -len(by_token[k]))
    rng = random.Random(seed)
    chosen = ranked[: n // 2] + rng.sample(ranked[n // 2 :], min(n - n // 2, len(ranked) - n // 2))
    reader = Reader(client, settings)
    mismatches: list[str] = []
    for token, view in zip(chosen, reader.read_many(chosen), strict=True):
        want = reference_windows(
            by_token[token], view.at, settings.windows, settings.exact_horizon_ms, settings.bucket_ms
        )
        for w in settings.windows:
            if token in unsure and w.ms > horizon:
                continue  # bucketed: which of its trades were late is not known here
            g, r = view.windows[w.label], want[w.label]
            got = (g.buys, g.sells, g.buy_volume, g.sell_volume, g.open, g.close)
            exp = (r["buys"], r["sells"], r["buy_volume"], r["sell_volume"], r["open"], r["close"])
            if settings.metrics == "full":  # the screener's too (CONTRACT §2b)
                got += (g.makers, g.buyers, g.sellers, g.high, g.low)
                exp += (r["makers"], r["buyers"], r["sellers"], r["high"], r["low"])
            if got != exp:
                mismatches.append(f"{token} {w.label}: got {got} want {exp}")
    return {
        "verified_tokens": len(chosen),
        "unverified_bucketed": len(unsure.intersection(chosen)),
        "mismatches": len(mismatches),
        "first_mismatch": mismatches[0] if mismatches else "",
    }


def late_unsure(trades: list[Trade], horizon: int, per_read: int) -> set[str]:
    """Tokens with a trade that a newer trade of theirs, at most ``per_read`` trades
    behind it in the stream (one read of its shard), makes late if both share a call."""
    out: set[str] = set()
    seen: dict[str, list[tuple[int, int]]] = {}  # token -> (position, ts) of its trades
    for i, t in enumerate(trades):
        seen.setdefault(t.token, []).append((i, t.ts))
    for token, xs in seen.items():
        best: deque[int] = deque()  # positions ahead, newest ts first (a monotonic queue)
        for k in range(len(xs) - 1, -1, -1):
            pos, ts = xs[k]
            while best and xs[best[0]][0] > pos + per_read:
                best.popleft()
            if best and ts <= xs[best[0]][1] - horizon:
                out.add(token)
                break
            while best and xs[best[-1]][1] <= ts:
                best.pop()
            best.append(k)
    return out


def bench_settings(settings: Settings, clock: str | None) -> Settings:
    return replace(settings, clock=clock or settings.clock)
