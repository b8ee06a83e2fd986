"""Every counter a tradeagg process may send, and every warning a probe may raise.

docs/metrics.md describes each one. Processes send each counter in every
StatsD flush, zero when nothing happened, so a dashboard shows 0 rather than
"no data" for events that have not occurred yet (late trades, dead letters,
errors), and an alert on a rate sees a series from the start.
"""

from __future__ import annotations

WARNINGS = ("backlog", "pending_age", "memory", "loop_block", "pool", "redis")

COUNTERS = (
    # bridge
    "messages.received",
    "messages.invalid",
    "trades.received",
    "trades.valid",
    "trades.invalid",
    "entries.written",
    "bridge.paused",
    "kafka.errors",
    "kafka.commit_failed",
    "redis.errors",
    "messages.failed",
    # worker
    "trades.applied",
    "trades.duplicate",
    "trades.late",
    "trades.over_capacity",
    "tokens.rebuilt",
    "entries.acked",
    "entries.reclaimed",
    "entries.poison",
    "deadletters",
    "redis.wait_timeouts",
    "trades.unparsable",
    "batch.refused",
    # worker (change feed)
    "feed.announced",
    "feed.kafka_dropped",
    "feed.kafka_errors",
    # serve (SSE hub)
    "sse.announcements",
    "sse.dropped",
    # janitor
    "janitor.runs",
    "janitor.refreshed",
    "janitor.expired",
    "janitor.checked",
    "janitor.checks_skipped",
    "stream.trimmed",
    # every process
    "greenlet.crashed",
    *(f"warnings.{name}" for name in WARNINGS),
)

__all__ = ["COUNTERS", "WARNINGS"]
