"""The small exception hierarchy of tradeagg.

Library errors (redis-py, confluent-kafka, marshmallow) are re-raised as one of
these with ``from None`` where they cross a module boundary, so callers catch
tradeagg errors only.
"""

from __future__ import annotations


class TradeaggError(Exception):
    """Base of every error tradeagg raises on purpose."""


class ConfigError(TradeaggError):
    """Invalid environment or command-line configuration (exit code 2)."""


class UsageError(TradeaggError):
    """A command was called with arguments that cannot work (exit code 2)."""


class InvalidTrade(TradeaggError):
    """A trade (or a message) breaks the contract; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedEntry(TradeaggError):
    """A shard-stream entry (or one of its records) the codec cannot read."""

    def __init__(self, reason: str, raw: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class StoreError(TradeaggError):
    """Redis failed or answered something the engine cannot use."""


class CorruptTokenError(StoreError):
    """A token's keys do not hold what the engine wrote (requirement 8.4)."""


class RefusedWrite(StoreError):
    """Redis refused a write for a reason of its own (OOM, READONLY, BUSY, MOVED,
    connection lost): the entries are fine, the write is retried later."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BrokerError(TradeaggError):
    """Kafka failed in a way a retry may fix."""
