"""`tradeagg stats`: live figures for humans (or --json for scripts).

Throughput is the sum, over live processes, of the per-second rates each
one puts in its heartbeat (counter deltas over its last heartbeat interval),
so it needs no StatsD. Backlog, pending, active tokens, dead letters and
memory are read from Redis directly.
"""

from __future__ import annotations

import argparse
from typing import Any

import redis

from tradeagg.clock import now_ms
from tradeagg.commands import render
from tradeagg.commands.health import fresh
from tradeagg.contract.exactjson import dumps
from tradeagg.observe import probes
from tradeagg.settings import Settings
from tradeagg.store.connection import connect, store_error

EXAMPLES = """examples:
  tradeagg stats
  tradeagg stats --json | jq .throughput
"""

HEADLINE = ("trades.received", "trades.valid", "trades.invalid", "trades.applied")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="live figures for humans (or --json for scripts).",
        description="Live figures of the deployment: processes (from heartbeats), throughput "
        "per second, per-shard backlog, pending entries and their age, active tokens, dead "
        "letters, Redis memory. --json prints one object for scripts.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(run=run)


def gather(client: Any, settings: Settings) -> dict[str, Any]:
    now = now_ms()
    beats = [b for b in probes.heartbeats(client) if not b.get("corrupt")]
    live = [b for b in beats if fresh(b, now)]
    throughput: dict[str, float] = {}
    for b in live:
        for name, rate in (b.get("rates") or {}).items():
            throughput[name] = round(throughput.get(name, 0.0) + float(rate), 2)
    shards = probes.shard_figures(client, settings)
    mem = probes.memory(client)
    return {
        "at": now,
        "processes": [
            {
                "kind": b.get("kind"),
                "name": b.get("name"),
                "host": b.get("host"),
                "pid": b.get("pid"),
                "live": fresh(b, now),
                "beat_age_ms": max(0, now - int(b.get("at", 0))),
                "up_s": max(0, now - int(b.get("started", now))) // 1000,
                "warnings": b.get("warnings") or [],
                "rates": b.get("rates") or {},
                "totals": b.get("totals") or {},
            }
            for b in beats
        ],
        "throughput": dict(sorted(throughput.items())),
        "shards": [f.as_dict() for f in shards],
        "totals": {
            "backlog": sum(f.backlog for f in shards),
            "pending": sum(f.pending for f in shards),
            "oldest_pending_ms": max((f.pending_age_ms for f in shards), default=0),
            "tokens_active": sum(f.active for f in shards),
            "deadletters": sum(f.dead for f in shards),
        },
        "memory": mem.as_dict(),
    }


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def _indented(
    headers: tuple[str, ...], rows: list[tuple[str, ...]], left: tuple[int, ...], show_header: bool
) -> list[str]:
    table = render.table(headers, rows, left=left, show_header=show_header)
    return ["  " + line for line in render.lines(table)]


def render_text(s: dict[str, Any]) -> str:
    out = [f"processes ({sum(p['live'] for p in s['processes'])} live)"]
    procs = [
        (
            str(p["kind"]),
            str(p["name"]),
            "live" if p["live"] else "stale",
            f"beat {p['beat_age_ms']} ms ago",
            f"up {p['up_s']} s",
            f"warnings {','.join(p['warnings']) or '-'}",
        )
        for p in s["processes"]
    ]
    if procs:
        head = ("kind", "name", "state", "beat", "up", "warnings")
        out.extend(_indented(head, procs, (0, 1, 2, 3, 4, 5), show_header=False))
    else:
        out.append("  none (no heartbeat: is anything running?)")
    tp = s["throughput"]
    out.append("throughput (per second, summed over live processes)")
    shown = [n for n in HEADLINE if n in tp] + sorted(n for n in tp if n not in HEADLINE)
    out.append("  " + ("  ".join(f"{n}={tp[n]:g}" for n in shown) or "none reported"))
    out.append("shards")
    rows = []
    for f in s["shards"]:
        rows.append(
            (
                f"s{f['shard']}",
                str(f["backlog"]),
                str(f["pending"]),
                str(f["pending_age_ms"]),
                str(f["active"]),
                str(f["dead"]),
                "yes" if f["group"] else "no",
            )
        )
    t = s["totals"]
    rows.append(
        (
            "all",
            str(t["backlog"]),
            str(t["pending"]),
            str(t["oldest_pending_ms"]),
            str(t["tokens_active"]),
            str(t["deadletters"]),
            "",
        )
    )
    head = ("shard", "backlog", "pending", "oldest_pending_ms", "active", "dead", "group")
    out.extend(_indented(head, rows, (), show_header=True))
    m = s["memory"]
    limit = f" of {_bytes(m['maxmemory'])} ({m['pct']}%)" if m["maxmemory"] else " (no maxmemory)"
    out.append(f"redis memory  {_bytes(m['used'])}{limit}")
    return "\n".join(out)


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = connect(settings)
    try:
        figures = gather(client, settings)
    except redis.RedisError as exc:
        raise store_error("redis", exc) from None
    print(dumps(figures) if args.json else render_text(figures), flush=True)
    return 0
