"""Is a Redis failure the store refusing work, or the work being wrong?

A refusal (out of memory, a read-only replica after a failover, a busy
script, cluster redirections, a lost connection) says nothing about the
entries being written: the same write succeeds later, so it is retried in
place and never counts against an entry's deliveries. Anything else (a
script error, NOPERM, a wrong type) is a failure of the work itself.
"""

from __future__ import annotations

import redis
from redis import exceptions as rx

from tradeagg.errors import RefusedWrite

#: error codes Redis answers when it will not do the work now
CODES = ("OOM", "READONLY", "BUSY", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING",
         "MASTERDOWN", "NOREPLICAS")  # fmt: skip
_BY_CLASS: tuple[tuple[type[BaseException], str], ...] = (
    (rx.OutOfMemoryError, "OOM"),
    (rx.ReadOnlyError, "READONLY"),
    (rx.BusyLoadingError, "LOADING"),
    (rx.MovedError, "MOVED"),
    (rx.AskError, "ASK"),
    (rx.TryAgainError, "TRYAGAIN"),
    (rx.ClusterDownError, "CLUSTERDOWN"),
    (rx.MasterDownError, "MASTERDOWN"),
    (redis.ConnectionError, "CONNECTION"),
    (redis.TimeoutError, "CONNECTION"),
    (ConnectionError, "CONNECTION"),
    (TimeoutError, "CONNECTION"),
)


def code_in(message: str) -> str | None:
    """The refusal code a Redis error message starts with (after an ``error: `` prefix)."""
    word = message.removeprefix("error: ").split(" ", 1)[0]
    return word if word in CODES else None


def refusal(exc: BaseException) -> str | None:
    """``OOM``, ``READONLY``, ..., ``CONNECTION`` when ``exc`` is a refusal; else None."""
    if isinstance(exc, RefusedWrite):
        return exc.code
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    if isinstance(exc, rx.ClusterError) and "TTL exhausted" in str(exc):
        return "MOVED"  # redis-py gave up following redirections
    if isinstance(exc, redis.ResponseError):
        return code_in(str(exc))
    return None


def refused(what: str, exc: BaseException) -> RefusedWrite | None:
    """``exc`` as a ``RefusedWrite`` when it is a refusal."""
    code = refusal(exc)
    return None if code is None else RefusedWrite(code, f"{what}: {code}: {exc}")
