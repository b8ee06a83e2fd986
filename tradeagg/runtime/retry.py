"""The one retry policy for Redis work: tenacity, exponential backoff, logged.

Background parts (janitor, reclaimer, shard consumers) must outlive a Redis
outage: they retry with a growing pause and say so in one log line per
attempt, instead of dying or spinning. ``until`` lets a part stop retrying
when its process is stopping, so SIGTERM is not held up by an outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)

from tradeagg.errors import StoreError
from tradeagg.logs import kv
from tradeagg.store.refusal import refusal

T = TypeVar("T")

OOM_LOG_EVERY_S = 60.0
RETRYABLE: tuple[type[BaseException], ...] = (redis.RedisError, StoreError, OSError)


def _logger(log: logging.Logger, what: str) -> Callable[[RetryCallState], None]:
    quiet_until = 0.0

    def before_sleep(state: RetryCallState) -> None:
        nonlocal quiet_until
        exc = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        level = logging.WARNING
        if exc is not None and refusal(exc) == "OOM":  # backpressure: one line a minute
            now = time.monotonic()
            if now < quiet_until:
                level = logging.DEBUG
            else:
                quiet_until = now + OOM_LOG_EVERY_S
        log.log(
            level,
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
    before_sleep: Callable[[RetryCallState], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Retrying:
    """A tenacity ``Retrying``: backoff ``first_s`` doubling up to ``max_s``.

    Retries forever unless ``attempts`` is given or ``until()`` turns true;
    then the last error is re-raised to the caller (the supervisor logs it).
    ``before_sleep`` replaces the default log line (a caller that counts or
    rate-limits its own); ``sleep`` spends the pause (the bridge polls Kafka
    meanwhile, to stay in its consumer group).
    """
    stop: Any = stop_never if attempts is None else stop_after_attempt(attempts)
    if until is not None:
        stopping = until

        def stop_when(state: RetryCallState, _base: Any = stop) -> bool:
            return stopping() or _base(state)

        stop = stop_when
    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return Retrying(
        retry=retry_if_exception_type(RETRYABLE),
        wait=wait_exponential(multiplier=first_s, min=first_s, max=max_s),
        stop=stop,
        before_sleep=before_sleep or _logger(log, what),
        reraise=True,
        **extra,
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


def until_accepted(
    fn: Callable[[], T],
    *,
    until: Callable[[], bool],
    on_refused: Callable[[BaseException], None],
    sleep: Callable[[float], None] | None = None,
    first_s: float = 0.1,
    max_s: float = 5.0,
) -> tuple[bool, T | None]:
    """``fn()`` until Redis accepts it: ``(True, result)``, or ``(False, None)`` if stopping.

    Only refusals (``tradeagg.store.refusal``: OOM, READONLY, BUSY, MOVED,
    connection lost...) are retried, with backoff ``first_s`` doubling up to
    ``max_s``; ``on_refused`` sees each one (count it, warn, pause). Any other
    error is the work's own and is raised at once. ``sleep`` replaces the
    pause (the bridge polls Kafka meanwhile, so it stays in its group).
    """

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            on_refused(exc)

    options: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    retrying = Retrying(
        retry=retry_if_exception(lambda exc: refusal(exc) is not None),
        wait=wait_exponential(multiplier=first_s, min=first_s, max=max_s),
        stop=lambda _state: until(),
        before_sleep=before_sleep,
        reraise=True,
        **options,
    )
    try:
        return True, retrying(fn)
    except Exception as exc:
        if refusal(exc) is not None and until():
            return False, None
        raise
