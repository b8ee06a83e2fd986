"""`tradeagg health`: exit 0 when every expected process is alive and lag is bounded, 1 otherwise.

Made for a platform's health check or a cron: one line per process and per
check, then the exit code. Liveness comes from the heartbeat keys the
processes refresh (``tradeagg:{hb}:KIND:NAME``, TTL three heartbeat
intervals; a clean stop deletes its key); lag is read from Redis directly.
"""

from __future__ import annotations

import argparse

import redis

from tradeagg.clock import now_ms
from tradeagg.commands.summary import add_json_flag, emit
from tradeagg.errors import UsageError
from tradeagg.observe import probes
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

EXAMPLES = """examples:
  tradeagg health                          # a worker and a bridge alive, lag under the warning levels
  tradeagg health --expect worker          # only workers are required
  tradeagg health --max-lag 50000 --max-pending-age 120000
  tradeagg health --expect ''              # lag checks only
"""

KINDS = ("worker", "bridge")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "health",
        help="exit 0 when every expected process is alive and lag is bounded, 1 otherwise.",
        description="Prints one line per live process (from the heartbeat keys) and per check, "
        "then exits 0 when at least one process of every --expect kind has a fresh heartbeat, "
        "no shard's backlog exceeds --max-lag entries and no pending entry has waited longer "
        "than --max-pending-age ms; 1 otherwise (Redis unreachable included).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--expect",
        default=",".join(KINDS),
        metavar="KINDS",
        help="comma-separated process kinds that must be alive (default: worker,bridge)",
    )
    p.add_argument(
        "--max-lag",
        type=int,
        metavar="N",
        help="most undelivered stream entries allowed in one shard "
        "(default: TRADEAGG_WARN_BACKLOG)",
    )
    p.add_argument(
        "--max-pending-age",
        type=int,
        metavar="MS",
        help="longest a delivered entry may stay unacknowledged "
        "(default: TRADEAGG_WARN_PENDING_AGE_MS)",
    )
    add_json_flag(p)
    p.set_defaults(run=run)


def fresh(beat: dict, now: int) -> bool:
    """Refreshed within two intervals: a process whose loop is stuck goes stale before its TTL."""
    try:
        return now - int(beat["at"]) <= 2 * float(beat["interval_s"]) * 1000 + 1000
    except (KeyError, TypeError, ValueError):
        return False


def process_line(beat: dict, now: int) -> str:
    if beat.get("corrupt"):
        return f"CORRUPT {beat['kind']} {beat['name']} heartbeat value is not ours"
    state = "ok" if fresh(beat, now) else "STALE"
    age = max(0, now - int(beat.get("at", 0)))
    up = max(0, now - int(beat.get("started", now))) // 1000
    warnings = ",".join(beat.get("warnings") or []) or "-"
    return (
        f"{state} {beat.get('kind')} {beat.get('name')} pid={beat.get('pid')} "
        f"host={beat.get('host')} beat_age_ms={age} up_s={up} warnings={warnings}"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    expect = [k.strip() for k in args.expect.split(",") if k.strip()]
    for k in expect:
        if k not in KINDS:
            raise UsageError(f"--expect: unknown kind {k!r} (kinds: {', '.join(KINDS)})")
    max_lag = settings.warn_backlog if args.max_lag is None else args.max_lag
    max_age = settings.warn_pending_age_ms if args.max_pending_age is None else args.max_pending_age
    if max_lag < 0 or max_age < 0:
        raise UsageError("--max-lag and --max-pending-age must be >= 0")
    client = connect(settings)
    try:
        beats = probes.heartbeats(client)
        shards = probes.shard_figures(client, settings)
    except redis.RedisError as exc:
        detail = f"redis unreachable: {type(exc).__name__}: {exc}"
        if args.json:
            emit("health", False, True, checks=[{"check": "redis", "ok": False, "detail": detail}])
        else:
            print(f"FAIL {detail}", flush=True)
        return 1
    now = now_ms()
    checks: list[dict] = []
    for kind in expect:
        alive = sum(1 for b in beats if b.get("kind") == kind and fresh(b, now))
        checks.append({"check": f"{kind}_alive", "ok": bool(alive), "alive": alive})
    worst = max(shards, key=lambda f: f.backlog)
    oldest = max(shards, key=lambda f: f.pending_age_ms)
    lag = {
        "check": "backlog",
        "ok": worst.backlog <= max_lag,
        "max_shard": f"s{worst.shard}",
        "entries": worst.backlog,
        "limit": max_lag,
        "total": sum(f.backlog for f in shards),
    }
    pending = {
        "check": "pending",
        "ok": oldest.pending_age_ms <= max_age,
        "shard": f"s{oldest.shard}",
        "oldest_ms": oldest.pending_age_ms,
        "limit": max_age,
        "total": sum(f.pending for f in shards),
    }
    checks += [lag, pending]
    healthy = all(c["ok"] for c in checks)
    if args.json:
        processes = [{**b, "fresh": fresh(b, now)} for b in beats]
        emit("health", healthy, True, processes=processes, checks=checks)
        return 0 if healthy else 1
    for beat in beats:
        print(process_line(beat, now))
    for c in checks[: len(expect)]:
        if not c["ok"]:
            print(f"FAIL {c['check'][: -len('_alive')]} no live heartbeat")
    for c in (lag, pending):
        state = "ok" if c["ok"] else "FAIL"
        figures = " ".join(f"{k}={v}" for k, v in c.items() if k not in ("check", "ok"))
        print(f"{state} {c['check']} {figures}")
    print("healthy" if healthy else "unhealthy", flush=True)
    return 0 if healthy else 1
