"""Readers check that the workers keep the windows they are asked to show.

A token's list is trimmed to the workers' longest window, so a reader whose
``TRADEAGG_WINDOWS`` asks for a longer one (``1d`` when workers keep ``1h``)
would print the last hour under a ``1d`` label. The live workers' heartbeats
say what they keep; a reader warns on stderr, or with ``--strict`` refuses.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis

from tradeagg.errors import ConfigError
from tradeagg.observe import probes
from tradeagg.settings import Settings


def add_strict_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 instead of warning when TRADEAGG_WINDOWS asks for windows longer than "
        "the running workers keep (default: warn on stderr)",
    )


def kept_ms(client: Any) -> tuple[int, str] | None:
    """``(ms, label)`` of the longest window the live workers keep; None if none reports it."""
    kept = [
        (int(b["longest_ms"]), str(b.get("windows", ["?"])[-1]))
        for b in probes.heartbeats(client, "worker")
        if isinstance(b.get("longest_ms"), int)
    ]
    return min(kept) if kept else None


def uncovered(client: Any, settings: Settings) -> str | None:
    """Why some asked-for windows cannot be right, or None."""
    try:
        kept = kept_ms(client)
    except redis.RedisError:
        return None  # the read itself will report Redis
    if kept is None:
        return None
    ms, label = kept
    longer = [w.label for w in settings.windows if w.ms > ms]
    if not longer:
        return None
    return (
        f"TRADEAGG_WINDOWS asks for {','.join(longer)} but the workers keep at most {label}: "
        f"those windows would count only the last {label}"
    )


def check_windows(client: Any, settings: Settings, command: str, strict: bool) -> None:
    """Warn on stderr (or raise ConfigError with ``strict``) when windows are not kept."""
    problem = uncovered(client, settings)
    if problem is None:
        return
    if strict:
        raise ConfigError(problem)
    print(f"tradeagg {command}: warning: {problem}", file=sys.stderr, flush=True)
