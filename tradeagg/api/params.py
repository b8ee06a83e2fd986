"""Validation of everything a client sends: only values checked here reach Redis.

Each parser takes the raw query (``parse_qs`` output) and returns typed values
or raises ``ApiError`` (HTTP 400) naming the parameter. Unknown or repeated
parameters are refused too, so a typo (``?limt=5``) is an error rather than
a silent default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs

from tradeagg.contract.address import ADDRESS_RE
from tradeagg.engine.args import MAX_AT, parse_min_volume
from tradeagg.engine.rank import RANK_BY
from tradeagg.settings import Settings

MAX_IDS = 100  # CONTRACT §7: a batch read holds up to 100 tokens
MAX_LIMIT = 500
MAX_STREAM_LIMIT = 100
MAX_QUERY = 6_000
_DIGITS = re.compile(r"^[0-9]{1,16}$")  # ASCII only: str.isdigit() accepts "²"


class ApiError(Exception):
    """A request the API refuses: its HTTP status and a message for ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TopSpec:
    """What a ranking subscription ranks: ``window``, ``by``, ``limit`` and the least volume."""

    window: str
    by: str
    limit: int
    min_volume: Decimal = Decimal(0)


def query(raw: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string as ``{name: value}``; unknown, repeated or empty names are 400."""
    if len(raw) > MAX_QUERY:
        raise ApiError(414, f"query string longer than {MAX_QUERY} bytes")
    try:
        parsed = parse_qs(raw, keep_blank_values=True, strict_parsing=bool(raw), max_num_fields=16)
    except ValueError as exc:
        raise ApiError(400, f"malformed query string: {str(exc)[:80]}") from None
    out: dict[str, str] = {}
    for name, values in parsed.items():
        if name not in allowed:
            shown = ", ".join(allowed) if allowed else "none"
            raise ApiError(400, f"unknown parameter {name[:40]!r} (allowed: {shown})")
        if len(values) != 1:
            raise ApiError(400, f"parameter {name!r} given {len(values)} times")
        out[name] = values[0]
    return out


def token(raw: str, what: str = "token") -> str:
    if not ADDRESS_RE.match(raw):
        raise ApiError(400, f"{what} {raw[:60]!r} is not a token address (base58, or 0x + 40 hex)")
    return raw


def tokens(raw: str, name: str = "ids") -> list[str]:
    """A comma-separated list of 1..100 addresses, duplicates dropped, order kept."""
    parts = [p for p in raw.split(",") if p]
    if not parts:
        raise ApiError(400, f"{name}: give at least one token address")
    if len(parts) > MAX_IDS:
        raise ApiError(400, f"{name}: at most {MAX_IDS} tokens, got {len(parts)}")
    return list(dict.fromkeys(token(p, f"{name} element") for p in parts))


def at(raw: str | None) -> int | None:
    """An instant in epoch ms, or None (now)."""
    if raw is None:
        return None
    if not _DIGITS.match(raw) or int(raw) >= MAX_AT:
        raise ApiError(400, f"at {raw[:40]!r} is not an epoch-millisecond instant")
    return int(raw)


def window(raw: str | None, settings: Settings, default: str) -> str:
    labels = [w.label for w in settings.windows]
    if raw is None:
        return default
    if raw not in labels:
        raise ApiError(400, f"window {raw[:40]!r} is not configured (windows: {','.join(labels)})")
    return raw


def by(raw: str | None) -> str:
    if raw is None:
        return "volume"
    if raw not in RANK_BY:
        raise ApiError(400, f"by {raw[:40]!r}: choose one of {', '.join(RANK_BY)}")
    return raw


def limit(raw: str | None, default: int, most: int = MAX_LIMIT) -> int:
    if raw is None:
        return default
    if not _DIGITS.match(raw) or not 1 <= int(raw) <= most:
        raise ApiError(400, f"limit {raw[:40]!r}: an integer from 1 to {most}")
    return int(raw)


def min_volume(raw: str | None) -> Decimal:
    """The least window volume a ranked token needs (default 0)."""
    return Decimal(0) if raw is None else parse_min_volume(raw)


def top_spec(raw: str, settings: Settings) -> TopSpec:
    """``5m:volume:50`` (by, limit and a least volume optional) as a TopSpec."""
    parts = raw.split(":")
    if not 1 <= len(parts) <= 4:
        raise ApiError(
            400, f"top {raw[:60]!r}: expected WINDOW[:BY[:LIMIT[:MIN_VOLUME]]], e.g. 5m:volume:50"
        )
    w = window(parts[0], settings, "")
    b = by(parts[1] if len(parts) > 1 else None)
    n = limit(parts[2] if len(parts) > 2 else None, 50, MAX_STREAM_LIMIT)
    least = min_volume(parts[3] if len(parts) > 3 else None)
    return TopSpec(w, b, n, least)
