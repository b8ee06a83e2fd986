"""One Kafka message -> its valid trades and at most one dead letter (issue 10).

A bad message costs one dead letter whatever it holds: the count of rejected
elements, the first ``MAX_REASONS`` reasons with their element index, a raw
excerpt of at most ``RAW_KEEP`` characters and where it came from
(topic/partition/offset). For rejected elements the excerpt is a JSON array of
the rejected elements themselves (with ``truncated=0`` it holds every one of
them and can be sent again as is); a message rejected whole keeps its first ``RAW_KEEP``
characters. Every field is valid UTF-8 (lone surrogates and undecodable bytes
are escaped), so writing a dead letter cannot fail on its content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tradeagg.contract import keys, validation
from tradeagg.contract.trade import Trade
from tradeagg.errors import InvalidTrade

RAW_KEEP = 1_000  # characters of raw input kept per dead letter
REASON_KEEP = 200  # characters per reason


@dataclass
class Intake:
    """What one message gave: trades to write, figures, and its dead letter if any."""

    trades: list[Trade] = field(default_factory=list)
    elements: int = 0  # elements decoded
    rejected: int = 0  # elements rejected (0 when the message failed whole)
    whole: bool = False  # rejected as a whole message (size, encoding, JSON, cap)
    failed: bool = False  # an unexpected exception while handling it
    reason: str = ""  # the first reason, for the log line
    dead: tuple[int, dict[str, str]] | None = None  # (shard, dead-letter fields)


def take(
    value: bytes | None, where: tuple[str, int, int], now_ms: int, skew_ms: int, shards: int
) -> Intake:
    """Validate one message value; never raises for its content."""
    try:
        parsed = validation.parse(value, now_ms, skew_ms)
    except InvalidTrade as exc:
        fields = _fields(where, exc.reason, -1, 0, 1, [], _head(value))
        return Intake(whole=True, reason=exc.reason, dead=(_shard(where, None, shards), fields))
    out = Intake(trades=parsed.trades, elements=parsed.elements, rejected=parsed.rejected)
    if not parsed.rejected:
        return out
    raw, truncated = _samples(parsed.samples)
    first_index, out.reason = parsed.reasons[0]
    fields = _fields(
        where, out.reason, first_index, parsed.elements, parsed.rejected, parsed.reasons, raw
    )
    fields["truncated"] = "1" if truncated or parsed.rejected > len(parsed.samples) else "0"
    out.dead = (_shard(where, parsed.samples[0], shards), fields)
    return out


def failed(
    value: bytes | None, where: tuple[str, int, int], exc: BaseException, shards: int
) -> Intake:
    """The dead letter of a message whose handling raised something unexpected."""
    reason = f"internal: {type(exc).__name__}: {exc}"
    fields = _fields(where, reason, -1, 0, 1, [], _head(value))
    fields["source"] = "bridge-failure"
    return Intake(failed=True, reason=reason, dead=(_shard(where, None, shards), fields))


def _fields(
    where: tuple[str, int, int],
    reason: str,
    index: int,
    elements: int,
    invalid: int,
    reasons: list[tuple[int, str]],
    raw: str,
) -> dict[str, str]:
    topic, part, off = where
    return {
        "reason": clean(reason[:REASON_KEEP]),
        "source": "bridge",
        "topic": clean(topic),
        "partition": str(part),
        "offset": str(off),
        "index": str(index),
        "elements": str(elements),
        "invalid": str(invalid),
        "reasons": clean("\n".join(f"{i}: {r[:REASON_KEEP]}" for i, r in reasons)),
        "raw": raw,
    }


def clean(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates become ``\\udXXX`` escapes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _head(value: Any) -> str:
    if isinstance(value, str):
        return clean(value[:RAW_KEEP])
    if not isinstance(value, bytes | bytearray):
        return ""
    return bytes(value[:RAW_KEEP]).decode("utf-8", "replace")


def _dump(element: Any) -> str:
    try:
        return json.dumps(element, default=str)  # ASCII: surrogates escaped
    except (TypeError, ValueError, RecursionError):
        return json.dumps(f"<{type(element).__name__}>")


def _samples(samples: list[Any]) -> tuple[str, bool]:
    """A JSON array of the rejected elements within RAW_KEEP characters, and whether cut."""
    parts: list[str] = []
    size = 2
    for element in samples:
        text = _dump(element)
        if size + len(text) + 1 > RAW_KEEP:
            whole = "[" + ",".join([*parts, text]) + "]"
            return whole[:RAW_KEEP], True
        parts.append(text)
        size += len(text) + 1
    return "[" + ",".join(parts) + "]", False


def _shard(where: tuple[str, int, int], element: Any, shards: int) -> int:
    """The token's shard when the element names a valid token, else the partition's."""
    token = element.get("token") if isinstance(element, dict) else None
    if isinstance(token, str) and validation.ADDRESS_RE.fullmatch(token):
        return keys.shard_of(token, shards)
    return where[1] % shards
