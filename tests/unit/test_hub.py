"""The SSE hub's bounds: one pending event per token, slow clients dropped, indexes cleaned."""

from __future__ import annotations

import time

import redis

from tradeagg.api.hub import MAX_PENDING, STALL_S, Hub, Subscriber
from tradeagg.api.params import TopSpec
from tradeagg.observe.metrics import NullMetrics
from tradeagg.settings import Settings

A, B = "A" * 44, "B" * 44


def hub() -> Hub:
    unused = redis.Redis(host="127.0.0.1", port=1)  # never connected: no Redis call here
    return Hub(unused, unused, Settings(), NullMetrics())


def test_a_newer_state_replaces_the_pending_one_and_goes_last() -> None:
    sub = Subscriber(tokens=[A, B])
    sub.offer(A, b"a1")
    sub.offer(B, b"b1")
    sub.offer(A, b"a2")
    assert sub.take(0) == [b"b1", b"a2"]
    assert sub.take(0) == []


def test_a_client_too_far_behind_is_dropped_and_forgotten() -> None:
    h = hub()
    sub = Subscriber(top=TopSpec("5m", "volume", 50))
    other = Subscriber(tokens=[A])
    h.subscribe(sub)
    h.subscribe(other)
    for i in range(MAX_PENDING):
        h.deliver([sub], f"T{i}", b"x")
    assert not sub.closed and len(sub.mailbox) == MAX_PENDING
    h.deliver([sub], "one-more", b"x")
    assert sub.closed and sub.mailbox == {} and h.dropped == 1
    assert h.clients() == 1 and TopSpec("5m", "volume", 50) not in h.by_top
    h.deliver([sub], "late", b"x")  # a closed client takes nothing more
    assert sub.mailbox == {}


def test_a_client_that_takes_nothing_for_long_is_dropped() -> None:
    h = hub()
    sub = Subscriber(tokens=[A, B])
    h.subscribe(sub)
    h.deliver([sub], A, b"a")
    sub.taken_at = time.monotonic() - STALL_S - 1
    h.deliver([sub], A, b"a2")  # one pending event: not behind yet
    assert not sub.closed
    h.deliver([sub], B, b"b")
    assert sub.closed and A not in h.by_token and B not in h.by_token


def test_unsubscribe_cleans_every_index() -> None:
    h = hub()
    subs = [
        Subscriber(tokens=[A]),
        Subscriber(tokens=[A, B]),
        Subscriber(top=TopSpec("1m", "buys", 5)),
    ]
    for s in subs:
        h.subscribe(s)
    assert h.clients() == 3 and len(h.by_token[A]) == 2
    for s in subs:
        h.unsubscribe(s)
        h.unsubscribe(s)  # twice is harmless
    assert h.clients() == 0 and h.by_token == {} and h.by_top == {} and h.members == {}
