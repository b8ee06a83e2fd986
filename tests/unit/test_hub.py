"""The SSE hub's bounds: one pending event per token, slow clients dropped, indexes cleaned."""

from __future__ import annotations

import time
from decimal import Decimal

import gevent
import gevent.event
import gevent.socket
import redis

from tradeagg.api.hub import (
    BLOCK_MS,
    MAX_PENDING,
    STALL_S,
    TICK_S,
    TOP_MAX_AGE_S,
    Hub,
    Subscriber,
    update_event,
)
from tradeagg.api.params import TopSpec
from tradeagg.engine.rank import Ranking, rank
from tradeagg.engine.read import TokenView, WindowView
from tradeagg.observe.metrics import NullMetrics
from tradeagg.settings import Settings

A, B, C = "A" * 44, "B" * 44, "C" * 44


def hub(**kw) -> Hub:
    unused = redis.Redis(host="127.0.0.1", port=1)  # never connected: no Redis call here
    return Hub(unused, unused, Settings(), NullMetrics(), **kw)


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


def _view(token: str, volume: int = 1) -> TokenView:
    w = WindowView(buys=volume, volume=Decimal(volume))
    return TokenView(token, 1_000, 900, {"1m": w, "5m": w})


def test_an_update_is_read_and_rendered_once_and_the_same_bytes_reach_every_subscriber():
    h = hub()
    reads: list[list[str]] = []

    def fetch(tokens, ats):  # stands in for Redis
        assert ats == [None] * len(tokens)  # each as of its own last_update
        reads.append(list(tokens))
        return [t for t in tokens]

    h.ranker.reader.fetch = fetch
    h.ranker.reader.view = lambda token, at, raw: _view(raw)
    both, only_a = Subscriber(tokens=[A, B]), Subscriber(tokens=[A])
    h.subscribe(both)
    h.subscribe(only_a)
    h.dispatch({A, B, C})
    assert reads == [[A, B]]  # C is watched by nobody: not read
    assert set(both.mailbox) == {A, B} and set(only_a.mailbox) == {A}
    assert both.mailbox[A] is only_a.mailbox[A]  # rendered once, shared
    assert both.mailbox[A] == update_event(_view(A))
    assert len(both.take(0)) == 2  # both events leave in one write


def test_announcements_within_a_tick_are_handed_out_together():
    now = [0.0]
    h = hub(clock=lambda: now[0])
    script = [(0.0, {A}), (0.01, {B}), (0.02, {C}), (0.03, set()), (TICK_S + 0.001, set())]
    blocks, handed = [], []

    def read(ids, block):  # stands in for XREAD: returns what was announced meanwhile
        blocks.append(block)
        at, changed = script.pop(0)
        now[0] = at
        return changed

    h.tails = lambda: {}
    h.read = read
    h.dispatch = lambda changed: handed.append(set(changed))
    h.run(lambda: not script)
    assert handed == [{A}, {B, C}]  # the first at once, the rest one tick later, together
    assert blocks[:2] == [BLOCK_MS, BLOCK_MS]  # nothing waiting: XREAD blocks its full time
    assert all(b <= 40 for b in blocks[2:])  # something waiting: never past the tick


def test_one_ranking_pass_serves_every_top_request_until_it_is_too_old():
    now = [100.0]
    h = hub(clock=lambda: now[0])
    passes = []

    def top(window, by="volume", limit=20, at=None, ahead_ms=0):  # stands in for the Redis reads
        passes.append(window)
        views = [_view(t, v) for t, v in ((A, 1), (B, 3), (C, 2))]
        return Ranking(5_000, window, by, 3, rank(views, window, by, limit), views)

    h.ranker.top = top
    stop = []
    loop = gevent.spawn(h.rank_loop, lambda: bool(stop))
    answers = gevent.joinall([gevent.spawn(h.top, "5m", "volume", 2) for _ in range(5)])
    assert len(passes) == 1  # five requests, one pass
    for g in answers:
        assert [r.token for r in g.value.rows] == [B, C] and g.value.at == 5_000
    assert [r.token for r in h.top("1m", "volume", 3).rows] == [B, C, A]  # same pass
    assert len(passes) == 1
    now[0] += TOP_MAX_AGE_S + 0.1  # too old now: the next request waits for a new pass
    h.top("5m", "volume", 1)
    assert len(passes) == 2
    stop.append(True)
    h.wake_ranker.set()
    loop.join(5)


def test_a_waiting_request_takes_the_next_pass_even_when_passes_outlast_the_age_bound():
    now = [100.0]
    h = hub(clock=lambda: now[0])
    passes = []

    def slow_top(window, by="volume", limit=20, at=None, ahead_ms=0):  # a loaded machine
        passes.append(window)
        aims.append(ahead_ms)
        h.ranker.catch_ups += 1  # tokens moved past its instant: it read everything twice
        now[0] += TOP_MAX_AGE_S + 1
        views = [_view(t, v) for t, v in ((A, 1), (B, 3), (C, 2))]
        return Ranking(5_000, window, by, 3, rank(views, window, by, limit), views)

    aims = []
    h.ranker.top = slow_top
    stop = []
    loop = gevent.spawn(h.rank_loop, lambda: bool(stop))
    assert [r.token for r in h.top("5m", "volume", 2).rows] == [B, C]
    assert len(passes) == 1
    now[0] += TOP_MAX_AGE_S + 1  # older than the bound, but passes are slow: still the newest
    h.top("5m", "volume", 2)
    assert len(passes) == 1
    now[0] += 3 * (TOP_MAX_AGE_S + 1)  # older than two slow passes: the next one
    h.top("5m", "volume", 2)
    assert len(passes) == 2
    # the first pass aims at now; after it caught up, the next ahead by twice the last
    # one's length, so that tokens applied while it reads do not make it read every token
    # again (catch-up)
    assert aims == [0, 2_000 * (TOP_MAX_AGE_S + 1)]
    stop.append(True)
    h.wake_ranker.set()
    loop.join(5)


def test_new_watchers_are_greeted_with_the_newest_known_events_and_read_only_the_rest():
    """1,000 clients connecting at once to watch the same tokens used to read each token as
    of now, client after client (~10 s of slow events for everybody). The event the hub
    last handed out for a token, or a greeting read, greets the next watchers until the
    token is announced again; only the other tokens are read. Forgotten with the token's
    last watcher (bounded)."""
    from tradeagg.api.app import Api

    h = hub()
    h.ranker.reader.fetch = lambda tokens, ats: list(tokens)
    h.ranker.reader.view = lambda token, at, raw: _view(raw, 7)
    first = Subscriber(tokens=[A])
    h.subscribe(first)
    h.dispatch({A})
    api = Api(h.client, h, Settings(), NullMetrics())
    reads: list[list[str]] = []

    def read_many(tokens, at=None):
        reads.append(list(tokens))
        return [_view(t) for t in tokens]

    api.reader.read_many = read_many

    def connect(tokens: str) -> Subscriber:
        before = set(h.subscribers)
        environ = {"REQUEST_METHOD": "GET", "QUERY_STRING": f"tokens={tokens}"}
        assert api.stream(environ).status == 200
        (sub,) = set(h.subscribers) - before
        return sub

    second = connect(f"{B},{A}")
    assert reads == [[B]]  # A: the event dispatch handed out
    assert list(second.mailbox.items()) == [
        (A, update_event(_view(A, 7))),
        (B, update_event(_view(B))),
    ]
    third = connect(f"{A},{B}")
    assert reads == [[B]]  # B: the second's greeting read
    assert list(third.mailbox.items()) == list(second.mailbox.items())

    h.hear({B})  # announced: what was read of it is no longer the newest
    connect(B)
    assert reads == [[B], [B]]
    for sub in list(h.subscribers):
        h.unsubscribe(sub)
    assert h.recent == {} and h.heard_of == {}


def test_a_greeting_read_overtaken_by_an_announcement_is_not_remembered() -> None:
    h = hub()
    sub = Subscriber(tokens=[A])
    h.subscribe(sub)
    _, ticket = h.greeting([A])
    h.hear({A})  # announced while the greeting was read
    h.remember({A: b"old"}, ticket)
    assert h.greeting([A])[0] == {}
    _, ticket = h.greeting([A])
    h.remember({A: b"new"}, ticket)
    assert h.greeting([A])[0] == {A: b"new"}


def test_a_client_whose_greeting_waits_for_redis_is_not_stalled_however_long(
    monkeypatch,
) -> None:
    """1,000 clients connecting at once on a loaded machine wait their turn for Redis
    (32 requests at once) longer than STALL_S; they used to be dropped meanwhile (the hub
    delivered to them while their greeting was read, and their stall clock was running)."""
    import tradeagg.api.hub as hub_module
    from tradeagg.api.app import Api

    monkeypatch.setattr(hub_module, "STALL_S", 0.05)
    h = hub()
    api = Api(h.client, h, Settings(), NullMetrics())
    redis_answers = gevent.event.Event()

    def slow_read_many(tokens, at=None):  # Redis busy: the greeting waits
        redis_answers.wait(5)
        return [_view(t) for t in tokens]

    api.reader.read_many = slow_read_many
    environ = {"REQUEST_METHOD": "GET", "QUERY_STRING": f"tokens={A},{B}"}
    request = gevent.spawn(api.stream, environ)
    gevent.sleep(0.01)
    (sub,) = h.subscribers
    gevent.sleep(0.1)  # longer than STALL_S, still greeting
    h.deliver([sub], A, b"a")
    h.deliver([sub], B, b"b")
    assert not sub.closed and h.clients() == 1
    redis_answers.set()
    assert request.get(timeout=5).status == 200
    gevent.sleep(0.1)  # greeted, and has taken nothing since for longer than STALL_S
    h.deliver([sub], A, b"a2")
    assert sub.closed


def _direct(chunked: bool = True):
    """A subscriber whose stream the hub writes, and the client's end of its socket."""
    from tradeagg.api.push import DirectWriter

    server, client = gevent.socket.socketpair()
    sub = Subscriber(tokens=[A, B])
    sub.writer = DirectWriter(server, chunked)
    return sub, client


def _received(sock, want: int) -> bytes:
    got = b""
    while len(got) < want:
        with gevent.Timeout(5):
            got += sock.recv(1 << 20)
    return got


def test_the_hub_writes_a_tick_of_events_in_one_chunk_without_waking_the_client() -> None:
    h = hub()
    sub, client = _direct()
    h.subscribe(sub)
    h.deliver([sub], A, b"a1")
    h.deliver([sub], B, b"b1")
    h.deliver([sub], A, b"a2")
    assert sub.mailbox and not sub.ready.is_set()  # nobody woken: the hub writes
    h.flush()
    assert sub.mailbox == {} and not sub.writing and not sub.ready.is_set()
    assert _received(client, 9) == b"4\r\nb1a2\r\n"  # pywsgi's chunk framing
    h.deliver([sub], B, b"b2")
    h.flush()
    assert _received(client, 7) == b"2\r\nb2\r\n"


def test_what_a_full_socket_does_not_take_is_left_to_the_client_greenlet() -> None:
    from tradeagg.api.app import push

    h = hub()
    sub, client = _direct(chunked=False)
    h.subscribe(sub)
    big = b"x" * (16 << 20)  # more than a socket buffer takes
    h.deliver([sub], A, big)
    h.flush()
    assert sub.writing and 0 < len(sub.backlog) < len(big) and sub.ready.is_set()
    h.deliver([sub], B, b"b")  # while it writes, the hub leaves the client alone
    h.flush()
    assert sub.mailbox == {B: b"b"}
    writer = gevent.spawn(push, sub, sub.writer)
    assert _received(client, len(big) + 1) == big + b"b"
    assert not sub.writing and sub.backlog == b""
    h.deliver([sub], A, b"c")  # the hub writes again
    h.flush()
    assert _received(client, 1) == b"c"
    sub.close()
    writer.join(5)
    assert writer.dead


def test_a_dropped_client_blocked_in_a_write_is_released() -> None:
    from tradeagg.api.app import push

    h = hub()
    sub, _client = _direct(chunked=False)  # never reads
    h.subscribe(sub)
    h.deliver([sub], A, b"x" * (16 << 20))
    h.flush()
    writer = gevent.spawn(push, sub, sub.writer)
    gevent.sleep(0.05)
    assert not writer.dead  # blocked writing
    for i in range(MAX_PENDING + 1):
        h.deliver([sub], f"T{i}", b"y")
    assert sub.closed and h.dropped == 1
    writer.join(5)
    assert writer.dead and h.clients() == 0


def test_a_real_event_stream_is_written_by_the_hub_once_its_headers_are_out() -> None:
    """Through pywsgi and Api: the stream's headers and first chunk come from pywsgi,
    then the subscriber has a writer and the hub's writes are well-formed chunks."""
    from gevent.pywsgi import WSGIServer

    from tradeagg.api.app import Api, Handler
    from tradeagg.api.push import DirectWriter

    h = hub()
    api = Api(h.client, h, Settings(), NullMetrics())
    server = WSGIServer(("127.0.0.1", 0), api, handler_class=Handler, log=None)
    server.start()
    try:
        sock = gevent.socket.create_connection(("127.0.0.1", server.server_port))
        sock.sendall(b"GET /v1/stream?top=5m:volume:50 HTTP/1.1\r\nHost: x\r\n\r\n")
        head = _received(sock, 1)
        while b"retry: 2000" not in head:
            head += _received(sock, len(head) + 1)[len(head) :]
        assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
        assert head.endswith(b"d\r\nretry: 2000\n\n\r\n")  # pywsgi's own first chunk
        with gevent.Timeout(5):
            while not (h.subscribers and next(iter(h.subscribers)).writer):
                gevent.sleep(0.01)
        sub = next(iter(h.subscribers))
        assert isinstance(sub.writer, DirectWriter) and sub.writer.chunked
        event = b"event: update\ndata: {}\n\n"
        h.deliver([sub], A, event)
        h.flush()
        assert _received(sock, 28) == b"18\r\n" + event + b"\r\n"  # 0x18 = 24 bytes
        sock.close()
        with gevent.Timeout(5):
            while h.clients():
                gevent.sleep(0.01)
    finally:
        server.stop(timeout=1)


def test_passes_aim_ahead_only_for_a_while_after_one_caught_up() -> None:
    """At rest a pass reads as of now (its rows are "now"); after one had to read every
    token again (a token moved past its instant), the next AIM_PASSES aim ahead by twice
    the last pass; then as of now again."""
    from tradeagg.api.hub import AIM_PASSES

    now = [100.0]
    h = hub(clock=lambda: now[0])
    aims, moved = [], [False, True] + [False] * (AIM_PASSES + 1)

    def top(window, by="volume", limit=20, at=None, ahead_ms=0):
        aims.append(ahead_ms)
        now[0] += 0.5  # each pass takes 0.5 s
        if moved[len(aims) - 1]:
            h.ranker.catch_ups += 1
        views = [_view(t, v) for t, v in ((A, 1), (B, 3))]
        return Ranking(5_000, window, by, 2, rank(views, window, by, limit), views)

    h.ranker.top = top
    for _ in moved:
        h.refresh_rankings()
    assert aims == [0, 0] + [1_000] * AIM_PASSES + [0]


def test_stream_rankings_alone_take_the_bounded_pass_top_requests_the_full_one() -> None:
    """Ranking subscriptions by a bounded metric read few tokens (``api/ranking.py``); a
    ``GET /v1/top`` meanwhile, or a metric with no stored bound, needs the full pass."""
    h = hub()
    full, few = [], []
    views = [_view(t, v) for t, v in ((A, 1), (B, 3), (C, 2))]

    def top(window, by="volume", limit=20, at=None, ahead_ms=0):
        (few if limit == 2 else full).append((window, by))
        return Ranking(5_000, window, by, 3, rank(views, window, by, limit), views)

    h.ranker.top = top
    h.bounded.top = top  # the bounded pass ranks to the subscription's limit
    sub = Subscriber(top=TopSpec("5m", "volume", 2))
    h.subscribe(sub)
    h.refresh_rankings()
    assert few == [("5m", "volume")] and full == []
    assert h.members[TopSpec("5m", "volume", 2)] == [B, C]
    assert b'"tokens": ["' + B.encode() in sub.pending()
    h.top_wanted_at = h.clock()  # a GET /v1/top came
    h.refresh_rankings()
    assert len(full) == 1 and len(few) == 1 and h.snapshot is not None
    h.top_wanted_at = -1e18
    h.subscribe(Subscriber(top=TopSpec("5m", "price_change_pct", 2)))
    h.refresh_rankings()
    assert len(full) == 2 and len(few) == 1


def test_a_ranking_whose_last_subscriber_left_during_the_pass_is_forgotten() -> None:
    h = hub()
    views = [_view(t, v) for t, v in ((A, 1), (B, 3))]
    sub = Subscriber(top=TopSpec("5m", "volume", 2))

    def top(window, by="volume", limit=20, at=None, ahead_ms=0):
        h.unsubscribe(sub)  # the client hangs up while the pass reads
        return Ranking(5_000, window, by, 2, rank(views, window, by, limit), views)

    h.bounded.top = top
    h.subscribe(sub)
    h.refresh_rankings()
    assert h.members == {} and h.top_at == {} and h.latest == {}
