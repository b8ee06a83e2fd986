"""Which Redis failures are refusals (retried in place) and the retry that honours that."""

from __future__ import annotations

import pytest
import redis
from redis import exceptions as rx

from tradeagg.errors import RefusedWrite, StoreError
from tradeagg.runtime.retry import until_accepted
from tradeagg.store.connection import store_error
from tradeagg.store.refusal import code_in, refusal


@pytest.mark.parametrize(
    "exc, code",
    [
        (rx.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "OOM"),
        (rx.ReadOnlyError("You can't write against a read only replica."), "READONLY"),
        (redis.ResponseError("BUSY Redis is busy running a script."), "BUSY"),
        (rx.BusyLoadingError("Redis is loading the dataset in memory"), "LOADING"),
        (rx.TryAgainError("Multiple keys request during rehashing of slot"), "TRYAGAIN"),
        (rx.ClusterDownError("The cluster is down"), "CLUSTERDOWN"),
        (rx.AskError("3999 127.0.0.1:6381"), "ASK"),
        (rx.ClusterError("TTL exhausted."), "MOVED"),
        (redis.ConnectionError("Connection refused"), "CONNECTION"),
        (redis.TimeoutError("Timeout reading"), "CONNECTION"),
        (RefusedWrite("OOM", "apply refused"), "OOM"),
    ],
)
def test_refusals_are_recognised(exc, code):
    assert refusal(exc) == code


@pytest.mark.parametrize(
    "exc",
    [
        rx.NoPermissionError("this user has no permissions to access one of the keys"),
        redis.ResponseError("ERR Error running script: attempt to compare nil"),
        redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        rx.ClusterError("Keys in request don't hash to the same slot"),
        StoreError("apply_trades failed: ERR something"),
        ValueError("bug"),
    ],
)
def test_genuine_failures_are_not_refusals(exc):
    assert refusal(exc) is None


def test_a_script_reason_names_its_refusal():
    assert code_in("error: OOM command not allowed when used memory > 'maxmemory'.") == "OOM"
    assert code_in("error: user_script:12: attempt to index a nil value") is None


def test_store_error_keeps_the_refusal_typed():
    err = store_error("apply_trades failed", rx.ReadOnlyError("read only replica"))
    assert isinstance(err, RefusedWrite) and err.code == "READONLY"
    assert type(store_error("x", redis.ResponseError("ERR bad"))) is StoreError


def test_until_accepted_retries_refusals_in_place_then_returns():
    calls, seen, pauses = [], [], []

    def fn() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise rx.OutOfMemoryError("command not allowed")
        return "done"

    ok, value = until_accepted(fn, until=lambda: False, on_refused=seen.append, sleep=pauses.append)
    assert (ok, value, len(calls)) == (True, "done", 4)
    assert [refusal(e) for e in seen] == ["OOM"] * 3
    assert pauses == sorted(pauses) and pauses[0] > 0  # backs off


def test_until_accepted_raises_genuine_failures_at_once():
    calls = []

    def fn() -> None:
        calls.append(1)
        raise rx.NoPermissionError("no permissions")

    with pytest.raises(rx.NoPermissionError):
        until_accepted(fn, until=lambda: False, on_refused=lambda e: None, sleep=lambda s: None)
    assert len(calls) == 1


def test_until_accepted_gives_up_when_stopping():
    stop = []

    def fn() -> None:
        stop.append(1)
        raise redis.ConnectionError("down")

    ok, value = until_accepted(
        fn, until=lambda: len(stop) >= 2, on_refused=lambda e: None, sleep=lambda s: None
    )
    assert (ok, value, len(stop)) == (False, None, 2)
