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


class BadQuery(UsageError):
    """A read asked for something that cannot be answered: ``name`` = ``value`` ``problem``.

    Worded without command-line flags; a command prefixes ``--`` to name its
    option (``commands/wording.py``), a library caller reads the fields.
    """

    def __init__(self, name: str, value: object, problem: str) -> None:
        self.name = name
        self.value = value
        self.problem = problem
        shown = repr(value) if isinstance(value, str) else str(value)
        super().__init__(f"{name} {shown} {problem}")


class PastInstant(BadQuery):
    """A read as of an instant earlier than a token's last_update (its state is gone).

    ``last_update`` and ``token`` are the first such token's; ``newest`` is the
    latest last_update among every token of the read that answered so.
    """

    def __init__(self, at: int, last_update: int, token: str, newest: int | None = None) -> None:
        super().__init__("at", at, f"is earlier than last_update {last_update} of token {token}")
        self.at = at
        self.last_update = last_update
        self.token = token
        self.newest = last_update if newest is None else newest


class FarAhead(BadQuery):
    """A read as of an instant so far past Redis' clock that sliding a token there
    would exceed a read's bounded work (the token was advanced up to that clock)."""

    def __init__(self, at: int, last_update: int, token: str) -> None:
        super().__init__(
            "at",
            at,
            f"is too far ahead: token {token} was advanced to the store's clock "
            f"({last_update}) and sliding the rest of the way exceeds a read's bounded work; "
            "ask for an earlier instant",
        )
        self.at = at
        self.last_update = last_update
        self.token = token


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


class TokenRebuilding(StoreError):
    """A long token is being rebuilt from its list, a bounded step per call
    (lua/lib/rebuild.lua): it has no consistent state to read until done."""


class RefusedWrite(StoreError):
    """Redis refused a write for a reason of its own (OOM, READONLY, BUSY, MOVED,
    connection lost): the entries are fine, the write is retried later."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BrokerError(TradeaggError):
    """Kafka failed in a way a retry may fix."""
