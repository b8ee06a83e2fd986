"""The one retry policy for Redis work: tenacity, exponential backoff, logged.

Background parts (janitor, reclaimer, shard consumers) must outlive a Redis
outage: they retry with a growing pause and say so in one log line per
attempt, instead of dying or spinning. ``until`` lets a part stop retrying
when its process is stopping, so SIGTERM is not held up by an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)

from tradeagg.errors import StoreError
from tradeagg.logs import kv

T = TypeVar("T")

RETRYABLE: tuple[type[BaseException], ...] = (redis.RedisError, StoreError, OSError)


def _logger(log: logging.Logger, what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "redis work failed, retrying %s",
            kv(
                what=what,
                attempt=state.attempt_number,
                retry_in_s=f"{pause:.2f}",
                error=type(exc).__name__,
                detail=str(exc)[:200],
            ),
        )

    return before_sleep


def policy(
    log: logging.Logger,
    what: str,
    *,
    attempts: int | None = None,
    until: Callable[[], bool] | None = None,
    first_s: float = 0.1,
    max_s: float = 5.0,
) -> Retrying:
    """A tenacity ``Retrying``: backoff ``first_s`` doubling up to ``max_s``.

    Retries forever unless ``attempts`` is given or ``until()`` turns true;
    then the last error is re-raised to the caller (the supervisor logs it).
    """
    stop: Any = stop_never if attempts is None else stop_after_attempt(attempts)
    if until is not None:
        stopping = until

        def stop_when(state: RetryCallState, _base: Any = stop) -> bool:
            return stopping() or _base(state)

        stop = stop_when
    return Retrying(
        retry=retry_if_exception_type(RETRYABLE),
        wait=wait_exponential(multiplier=first_s, min=first_s, max=max_s),
        stop=stop,
        before_sleep=_logger(log, what),
        reraise=True,
    )


def call(
    log: logging.Logger,
    what: str,
    fn: Callable[..., T],
    *args: Any,
    until: Callable[[], bool] | None = None,
    attempts: int | None = None,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)`` under ``policy``."""
    return policy(log, what, attempts=attempts, until=until)(fn, *args, **kwargs)
