"""Read-only figures about a running deployment, straight from Redis.

Shared by the periodic probes of every process (``observe``) and by the
``health`` and ``stats`` commands, so an operator's command and the
process's own warnings measure the same thing the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from redis.cluster import RedisCluster

from tradeagg.contract import keys
from tradeagg.settings import Settings
from tradeagg.store.connection import is_cluster, text
from tradeagg.store.stream import Backlog, ShardStream, missing


@dataclass(frozen=True)
class ShardFigures:
    """One shard stream as seen by the ``workers`` group."""

    shard: int
    length: int  # XLEN: entries kept in the stream
    backlog: int  # Backlog.lag: not yet delivered to the group (all of them if no group yet)
    pending: int  # delivered to a consumer, not acknowledged
    pending_age_ms: int  # idle time of the oldest pending entry; 0 when none
    active: int  # ZCARD of the shard's active-token index
    dead: int  # XLEN of the shard's dead-letter stream
    group: bool  # the consumer group exists (a worker started once)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MemoryFigures:
    """Redis memory; on a cluster, the primary closest to its limit."""

    used: int
    maximum: int  # 0: no maxmemory set
    node: str = ""

    @property
    def pct(self) -> float | None:
        return round(100.0 * self.used / self.maximum, 2) if self.maximum else None

    def as_dict(self) -> dict[str, Any]:
        return {"used": self.used, "maxmemory": self.maximum, "pct": self.pct, "node": self.node}


def _shard(stream: ShardStream, results: list[Any]) -> ShardFigures:
    length, groups, oldest, active, dead = results
    b = Backlog.from_replies(length, groups)
    age = 0
    if b.group and isinstance(oldest, list) and oldest:
        age = int(oldest[0].get("time_since_delivered") or 0)
    return ShardFigures(
        shard=stream.shard,
        length=b.length,
        backlog=b.lag,
        pending=b.pending,
        pending_age_ms=age,
        active=active if isinstance(active, int) else 0,
        dead=dead if isinstance(dead, int) else 0,
        group=b.group,
    )


def shard_figures(client: Any, settings: Settings) -> list[ShardFigures]:
    """Every shard in one pipelined round trip (per node on a cluster).

    A missing stream or group is not an error here: it reads as zero (or, for
    a stream without its group, as a backlog of everything in it).
    """
    pipe = client.pipeline(transaction=False) if not is_cluster(client) else client.pipeline()
    streams = [ShardStream(client, shard) for shard in range(settings.shards)]
    for s in streams:
        s.queue_backlog(pipe)
        pipe.xpending_range(s.key, keys.STREAM_GROUP, "-", "+", 1)
        pipe.zcard(keys.active(s.shard))
        pipe.xlen(s.dead_key)
    results = pipe.execute(raise_on_error=False)
    for r in results:
        if isinstance(r, Exception) and not missing(r):
            raise r
    return [_shard(s, results[i * 5 : i * 5 + 5]) for i, s in enumerate(streams)]


def memory(client: Any) -> MemoryFigures:
    """``used_memory`` against ``maxmemory`` (INFO memory)."""
    if is_cluster(client):
        per_node = client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        infos = list(per_node.items()) if "used_memory" not in per_node else [("", per_node)]
    else:
        infos = [("", client.info("memory"))]
    figures = [
        MemoryFigures(int(i.get("used_memory", 0)), int(i.get("maxmemory", 0)), text(n))
        for n, i in infos
    ]
    return max(figures, key=lambda f: (f.pct or 0.0, f.used))


def heartbeats(client: Any, kind: str = "*") -> list[dict[str, Any]]:
    """Every live heartbeat (expired ones are gone), sorted by kind and name.

    Heartbeats share the ``{hb}`` hash tag, so on a cluster they sit in one
    slot: SCAN visits every primary but only one holds any, and the MGET is
    single-slot. A process with a bad value still shows, as ``corrupt``.
    """
    names = sorted({text(k) for k in client.scan_iter(match=keys.heartbeat(kind, "*"), count=500)})
    if not names:
        return []
    out = []
    prefix = keys.heartbeat("", "")[:-2]
    for key, raw in zip(names, client.mget(names), strict=True):
        if raw is None:
            continue
        try:
            beat = json.loads(raw)
            if not isinstance(beat, dict):
                raise ValueError("not an object")
        except ValueError:
            rest = key[len(prefix) + 1 :]
            beat = {"kind": rest.split(":", 1)[0], "name": rest.partition(":")[2], "corrupt": True}
        beat["key"] = key
        out.append(beat)
    return sorted(out, key=lambda b: (str(b.get("kind")), str(b.get("name"))))
