"""The SSE hub's bounds: one pending event per token, slow clients dropped, indexes cleaned."""

from __future__ import annotations

import time

import redis

from tradeagg.api.hub import MAX_PENDING, RANK_DUTY, RANK_EVERY_S, STALL_S, Hub, Subscriber
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


class FakeTime:
    """The hub's clock, advanced by the ranking passes and by the ranker's waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, timeout: float) -> bool:
        self.now += timeout
        return False

    def clear(self) -> None:
        pass


def test_rankings_never_take_more_than_their_share_of_the_time() -> None:
    t = FakeTime()
    unused = redis.Redis(host="127.0.0.1", port=1)
    h = Hub(unused, unused, Settings(), NullMetrics(), clock=t)
    h.wake_ranker = t  # type: ignore[assignment]
    h.by_top[TopSpec("5m", "volume", 50)] = {Subscriber()}
    starts: list[float] = []
    took = [0.5, 6.0, 6.0, 0.5, 0.5]

    def refresh() -> None:
        h.ranked_at = t.now
        starts.append(t.now)
        t.now += took[len(starts) - 1]

    h.refresh_rankings = refresh  # type: ignore[method-assign]
    h.rank_loop(lambda: len(starts) == len(took))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # fast passes: every RANK_EVERY_S; a 6 s pass: the next starts 6 / RANK_DUTY s after it
    assert gaps[0] == RANK_EVERY_S
    assert gaps[1] == gaps[2] == 6.0 / RANK_DUTY
    assert gaps[3] == RANK_EVERY_S
    busy = sum(took[:-1]) / (starts[-1] - starts[0])
    assert busy <= RANK_DUTY + 1e-9
