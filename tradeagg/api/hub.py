"""The SSE hub: one reader of the change streams per server process, fanned out.

``Hub.run`` XREADs every shard's ``tradeagg:{sN}:changes`` (one blocking
connection for the whole process) and, at most once a tick (``TICK_S``), reads
each token announced meanwhile that somebody watches once (pipelined, each
exact as of its own last_update: the newest state), renders its ``update``
event once, and hands the same bytes to every subscriber of that token. A
subscriber is thus woken at most once a tick and writes everything it has
pending in one send; the work per subscriber is the events it receives.

Subscribers never make the hub wait and never make it buffer without bound:
a subscriber's mailbox holds at most one pending event per token (a newer
state replaces the older one: the client skips ahead), and a subscriber
whose mailbox outgrows ``MAX_PENDING`` or who has not taken anything for
``STALL_S`` seconds is dropped. Ranking subscriptions (``?top=5m:volume:50``)
share one exact ranking, refreshed at most every ``RANK_EVERY_S`` by its own
greenlet (``rank_loop``): a bounded pass (``api/ranking.py``) while no
``GET /v1/top`` wants the full one; when the
members change the subscribers get a ``top`` event with the new order.
``GET /v1/top`` (no ``at``) ranks the same shared pass (``Hub.top``): a pass
at most ``TOP_MAX_AGE_S`` old, else the next one; while such requests keep
coming, ``rank_loop`` keeps the pass fresh, so a request does not wait for it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import gevent.event

from tradeagg.api.params import TopSpec
from tradeagg.api.pipelines import fetch_split
from tradeagg.api.push import DirectWriter
from tradeagg.api.ranking import BoundedRanker, bounded
from tradeagg.contract import keys
from tradeagg.contract.address import ADDRESS_RE
from tradeagg.engine.rank import Ranked, Ranker, Ranking, default_window, rank
from tradeagg.engine.read import YIELD_EVERY, TokenView
from tradeagg.engine.viewjson import view_json
from tradeagg.errors import StoreError, TokenRebuilding
from tradeagg.logs import kv
from tradeagg.observe.metrics import Metrics
from tradeagg.runtime import retry
from tradeagg.settings import Settings
from tradeagg.store.connection import text

log = logging.getLogger("tradeagg.hub")

READ_COUNT = 2_000
BLOCK_MS = 500
MAX_PENDING = 256
STALL_S = 30.0
RANK_EVERY_S = 2.0
AIM_PASSES = 5  # after a pass that caught up, the next ones aimed ahead (then: now again)
TICK_S = 0.05  # announcements read meanwhile are handed out together, at most this often
# /v1/top serves a pass begun at most this long ago, plus twice the last pass's length: while
# wanted, a pass begins RANK_EVERY_S after the last one ended and takes a while (~0.5 s over
# 3,000 tokens on an idle machine, seconds on a loaded one), so a steady stream of requests
# is always served at once, from the newest pass; else a request takes the next to end
TOP_MAX_AGE_S = 2 * RANK_EVERY_S
TOP_WAIT_S = 30.0  # a /v1/top request waits at most this long for a pass (then: 503)
TOP_DEMAND_S = 30.0  # after the last /v1/top request, passes stop unless streams rank
TOP_KEY = "\0top"  # mailbox slot of the ranking event (never a token address)


def update_event(view: TokenView) -> bytes:
    return b"event: update\ndata: " + view_json(view).encode() + b"\n\n"


def top_event(spec: TopSpec, members: list[str], at: int) -> bytes:
    doc = {"window": spec.window, "by": spec.by, "limit": spec.limit, "at": at, "tokens": members}
    return b"event: top\ndata: " + json.dumps(doc).encode() + b"\n\n"


class Subscriber:
    """One SSE client: a bounded mailbox, one slot per token (newest wins).

    Once its stream's headers are out it may get a ``writer`` (``push``): the
    hub then writes its events itself after each hand-out (``Hub.flush``),
    unless the client's greenlet is ``writing`` (what the kernel did not take:
    ``backlog``), in which case that greenlet is woken and writes them.
    """

    __slots__ = (
        "tokens",
        "top",
        "mailbox",
        "ready",
        "closed",
        "taken_at",
        "writer",
        "writing",
        "backlog",
    )

    def __init__(self, tokens: Iterable[str] = (), top: TopSpec | None = None) -> None:
        self.tokens = frozenset(tokens)
        self.top = top
        self.mailbox: dict[str, bytes] = {}
        self.ready = gevent.event.Event()
        self.closed = False
        self.taken_at = time.monotonic()
        self.writer: DirectWriter | None = None
        self.writing = False
        self.backlog = b""

    def offer(self, key: str, payload: bytes) -> None:
        self.mailbox.pop(key, None)  # re-insert: events leave in the order of their newest state
        self.mailbox[key] = payload
        if (self.writer is None or self.writing) and not self.ready.is_set():
            self.ready.set()  # else the hub writes it (flush), without waking the greenlet

    def take(self, timeout: float) -> list[bytes]:
        """Everything pending (possibly nothing after ``timeout`` s); empties the mailbox."""
        self.ready.wait(timeout)
        self.ready.clear()
        self.taken_at = time.monotonic()
        out = list(self.mailbox.values())
        self.mailbox.clear()
        return out

    def pending(self) -> bytes:
        """Everything in the mailbox as one payload (empties it)."""
        out = b"".join(self.mailbox.values())
        self.mailbox.clear()
        return out

    def close(self) -> None:
        self.closed = True
        self.mailbox.clear()
        self.backlog = b""
        self.ready.set()


class Hub:
    def __init__(
        self,
        reader_client: Any,
        client: Any,
        settings: Settings,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.blocking = reader_client
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.ranker = Ranker(client, settings)
        self.subscribers: set[Subscriber] = set()
        self.by_token: dict[str, set[Subscriber]] = {}
        self.by_top: dict[TopSpec, set[Subscriber]] = {}
        self.members: dict[TopSpec, list[str]] = {}
        self.latest: dict[str, bytes] = {}  # update events of current ranking members
        # per watched token, its newest event until its next announcement (a greeting), and
        # the number of announcement batches heard when its last one came
        self.recent: dict[str, bytes] = {}
        self.heard = 0
        self.heard_of: dict[str, int] = {}
        self.ranked_at = -1e18
        self.wake_ranker = gevent.event.Event()
        self.top_at: dict[TopSpec, int] = {}  # the instant of each spec's members
        self.dropped = 0
        self.snapshot: Ranking | None = None  # the newest pass: every active token, one instant
        self.snapshot_started = -1e18  # clock() when that pass began
        self.ranked_rows: dict[tuple[str, str], list[Ranked]] = {}  # (window, by) of that pass
        # set when a pass ends (then replaced), to whether it read a ranking
        self.pass_done: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self.top_wanted_at = -1e18  # clock() of the last /v1/top request
        self.ranking_now = False  # a pass is under way
        self.passes = 0  # passes that ended with a ranking
        self.pass_s = 0.0  # how long the last one took
        self.bounded = BoundedRanker(self.ranker)
        self.bounded_s = 0.0  # how long the last bounded pass took
        self.aim_passes = 0  # passes still aimed ahead (after a catch-up)
        self.offered: set[Subscriber] = set()  # given events since the last flush

    # -- subscriptions (called from request greenlets) --

    def subscribe(self, sub: Subscriber) -> None:
        self.subscribers.add(sub)
        for token in sub.tokens:
            self.by_token.setdefault(token, set()).add(sub)
        if sub.top is not None:
            known = sub.top in self.members
            self.by_top.setdefault(sub.top, set()).add(sub)
            if known:
                self._greet(sub, sub.top)
            else:
                self.ranked_at = -1e18  # rank at once
                self.wake_ranker.set()
        self.metrics.gauge("sse.clients", self.clients())

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        for token in sub.tokens:
            subs = self.by_token.get(token)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self.by_token[token]
                    self.recent.pop(token, None)
                    self.heard_of.pop(token, None)
        if sub.top is not None:
            subs = self.by_top.get(sub.top)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self.by_top[sub.top]
                    self.members.pop(sub.top, None)
                    self.top_at.pop(sub.top, None)

    def clients(self) -> int:
        return len(self.subscribers)

    def greeting(self, tokens: Iterable[str]) -> tuple[dict[str, bytes], int]:
        """The newest events of those of ``tokens`` that have one (no announcement of them
        since): a burst of new clients watching the same tokens is greeted without a read
        of them each. Also a ticket for ``remember``."""
        return {t: self.recent[t] for t in tokens if t in self.recent}, self.heard

    def remember(self, events: dict[str, bytes], ticket: int) -> None:
        """Events of a greeting's read (begun when ``greeting`` gave ``ticket``) for the next
        watchers, unless a token was announced since (its event may be older than that)."""
        for token, payload in events.items():
            if token in self.by_token and self.heard_of.get(token, 0) <= ticket:
                self.recent.setdefault(token, payload)

    def hear(self, changed: set[str]) -> None:
        """Announced tokens: their remembered events are no longer the newest."""
        self.heard += 1
        for token in changed:
            if token in self.by_token:
                self.recent.pop(token, None)
                self.heard_of[token] = self.heard

    def close(self) -> None:
        for sub in list(self.subscribers):
            sub.close()

    # -- the one reader --

    def run(self, stopping: Callable[[], bool]) -> None:
        ids = retry.call(log, "hub.tails", self.tails, until=stopping)
        log.info("sse hub started %s", kv(shards=self.settings.shards))
        pending: set[str] = set()
        due = self.clock()
        while not stopping():
            block = BLOCK_MS if not pending else max(1, int(1000 * (due - self.clock())))
            changed = retry.call(log, "hub.read", self.read, ids, block, until=stopping)
            if changed is None:
                break
            pending |= changed
            if pending and self.clock() >= due:  # one hand-out per tick (leading edge)
                due = self.clock() + TICK_S
                retry.call(log, "hub.dispatch", self.dispatch, pending, until=stopping)
                pending = set()
        self.close()

    def tails(self) -> dict[str, str]:
        """The newest id of every change stream: only announcements after it are read."""
        pipe = self.blocking.pipeline(transaction=False)
        names = [keys.changes(s) for s in range(self.settings.shards)]
        for name in names:
            pipe.xrevrange(name, count=1)
        return {
            name: (text(last[0][0]) if last else "0-0")
            for name, last in zip(names, pipe.execute(), strict=True)
        }

    def read(self, ids: dict[str, str], block: int = BLOCK_MS) -> set[str]:
        """Tokens announced since ``ids`` (advanced in place); blocks up to ``block`` ms."""
        resp = self.blocking.xread(ids, count=READ_COUNT, block=block) or []
        changed: set[str] = set()
        for stream, entries in resp:
            if not entries:
                continue
            ids[text(stream)] = text(entries[-1][0])
            for _id, fields in entries:
                token = text(fields.get(b"token", b""))
                if ADDRESS_RE.match(token):
                    changed.add(token)
        if changed:
            self.hear(changed)
        self.metrics.incr("sse.announcements", len(changed))
        return changed

    def rank_loop(self, stopping: Callable[[], bool]) -> None:
        """Re-rank while anybody ranks: RANK_EVERY_S after the last pass ended, one at a time
        (on a loaded machine passes are slow; they never run back to back).

        Its own greenlet, so that a ranking over thousands of tokens never holds up
        the delivery of updates.
        """
        while not stopping():
            left = RANK_EVERY_S - (self.clock() - self.ranked_at)
            wanted = self.by_top or self.clock() - self.top_wanted_at < TOP_DEMAND_S
            if wanted and left <= 0:
                retry.call(log, "hub.rank", self.refresh_rankings, until=stopping)
                continue
            # nobody ranks: sleep until a subscription wakes us; else until the next pass
            self.wake_ranker.wait(RANK_EVERY_S if not wanted else max(0.01, left))
            self.wake_ranker.clear()

    def top(self, window: str, by: str, limit: int, min_volume: Decimal = Decimal(0)) -> Ranking:
        """The ranking of the newest shared pass if it began at most TOP_MAX_AGE_S + two
        passes ago, else of the next pass to end (however long passes take).

        Its ``at`` is the pass's instant; every row is exact as of it.
        """
        self.top_wanted_at = self.clock()
        deadline = self.clock() + TOP_WAIT_S
        seen = self.passes
        while self.snapshot is None or (
            self.passes == seen
            and self.clock() - self.snapshot_started > TOP_MAX_AGE_S + 2 * self.pass_s
        ):
            done = self.pass_done
            if not self.ranking_now:
                self.ranked_at = -1e18  # rank at once
                self.wake_ranker.set()
            outcome = done.wait(max(0.0, deadline - self.clock()))
            if outcome is None:
                raise StoreError("no ranking could be read in time; try again")
            if outcome is False:  # Redis failed that pass: say so now, not after TOP_WAIT_S
                raise StoreError("the ranking pass failed; try again")
        snap = self.snapshot
        if min_volume:  # not kept: a client's every amount would be a cache entry
            rows = rank(snap.views, window, by, limit, min_volume)
        else:
            rows = self.ranked_rows.get((window, by))
            if rows is None:
                rows = self.ranked_rows[(window, by)] = rank(snap.views, window, by, None)
        return Ranking(snap.at, window, by, snap.candidates, rows[:limit], snap.views, min_volume)

    def dispatch(self, changed: set[str]) -> None:
        """Read what is watched, render each event once, hand it to its subscribers."""
        ranked_in: dict[str, list[TopSpec]] = {}  # member token -> the rankings it is in
        for spec, order in self.members.items():
            for token in order:
                ranked_in.setdefault(token, []).append(spec)
        wanted = sorted(t for t in changed if t in self.by_token or t in ranked_in)
        if not wanted:
            return
        for view in self.newest(wanted):
            token = view.token
            payload = update_event(view)
            watchers = self.by_token.get(token)
            if watchers:
                self.recent[token] = payload
                self.deliver(list(watchers), token, payload)
            for spec in ranked_in.get(token, ()):
                self.latest[token] = payload
                self.deliver(list(self.by_top.get(spec, ())), token, payload)
        self.flush()

    def newest(self, tokens: list[str]) -> list[TokenView]:
        """Each token's newest state: as of its own last_update, which the announcement
        that named it (or a later apply) set. One pipelined round trip whatever moves
        meanwhile (a read as of now would answer "past" for a token applied after that
        now and need a second), and no sliding of windows to now in Redis: the state is
        exact as of its ``at``, and a later apply or the janitor announces the next. A
        token being rebuilt is skipped (announced again once rebuilt)."""
        reader = self.ranker.reader
        raws = fetch_split(lambda part: reader.fetch(part, [None] * len(part)), tokens)
        views = []
        for i, (token, raw) in enumerate(zip(tokens, raws, strict=True)):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                gevent.sleep(0)  # a long parse lets the clients' greenlets run
            try:
                views.append(reader.view(token, None, raw))
            except TokenRebuilding:
                continue
        return views

    def deliver(self, targets: Iterable[Subscriber], key: str, payload: bytes) -> None:
        now = time.monotonic()
        for sub in targets:
            if sub.closed:
                continue
            sub.offer(key, payload)
            self.offered.add(sub)
            if len(sub.mailbox) > MAX_PENDING or (
                len(sub.mailbox) > 1 and now - sub.taken_at > STALL_S
            ):
                self.drop(sub)

    def flush(self) -> None:
        """Write the events just handed out to the clients with a ``writer``: one
        non-blocking write each; what a client's socket does not take now its own
        greenlet writes (and, until done, the rest of its events)."""
        subs, self.offered = self.offered, set()
        now = time.monotonic()
        for sub in subs:
            writer = sub.writer
            if writer is None or sub.writing or sub.closed or not sub.mailbox:
                continue
            try:
                rest = writer.try_send(writer.frame(sub.pending()))
            except OSError:  # the client is gone
                self.unsubscribe(sub)
                sub.close()
                continue
            sub.taken_at = now
            if rest:
                sub.backlog, sub.writing = rest, True
                sub.ready.set()

    def drop(self, sub: Subscriber) -> None:
        self.unsubscribe(sub)
        sub.close()
        if sub.writer is not None:  # its greenlet may be blocked writing: let it return
            sub.writer.abort()
        self.dropped += 1
        self.metrics.incr("sse.dropped")
        log.warning("slow sse client dropped %s", kv(dropped=self.dropped))

    def refresh_rankings(self) -> None:
        """One ranking pass, ranked for each spec: the shared full pass (every active token
        read as of one instant: ``Hub.top`` serves it) while ``GET /v1/top`` is wanted or a
        spec ranks by a metric with no stored bound; else the bounded pass of each
        (window, by) the subscriptions rank by (``api/ranking.py``: few tokens read)."""
        started = self.ranked_at = self.clock()
        self.ranking_now = ok = True
        specs = list(self.by_top)
        full = self.wants_full(specs)
        try:
            # for a while after a pass had to read its tokens again (one moved past its
            # instant), aim ahead by twice the last pass; else as of now
            last = self.pass_s if full else self.bounded_s
            ahead = int(2_000 * last) if self.aim_passes > 0 else 0
            caught_up = self.ranker.catch_ups + self.bounded.catch_ups
            if full:
                ranking = self.ranker.top(
                    default_window(self.settings), "volume", 1, ahead_ms=ahead
                )
                orders = {
                    s: rank(ranking.views, s.window, s.by, s.limit, s.min_volume) for s in specs
                }
                ats = dict.fromkeys(specs, ranking.at)
                views = ranking.views
            else:
                orders, ats, views = self.bounded_pass(specs, ahead)
            if self.ranker.catch_ups + self.bounded.catch_ups > caught_up:
                self.aim_passes = AIM_PASSES
            else:
                self.aim_passes = max(0, self.aim_passes - 1)
            if full:
                self.snapshot, self.snapshot_started, self.ranked_rows = ranking, started, {}
                self.passes += 1
                self.pass_s = self.clock() - started
            else:
                self.bounded_s = self.clock() - started
        except BaseException:
            ok = False
            raise
        finally:  # failed too: waiting requests look again (and wait for the next pass)
            if self.ranked_at == started:  # (unless a new ranking asked for one at once)
                self.ranked_at = self.clock()  # the next pass RANK_EVERY_S after this one's end
            self.ranking_now = False
            self.pass_done.set(ok)
            self.pass_done = gevent.event.AsyncResult()
        self.publish_rankings(specs, orders, ats, views)

    def wants_full(self, specs: list[TopSpec]) -> bool:
        return (
            not specs
            or self.clock() - self.top_wanted_at < TOP_DEMAND_S
            or self.settings.clock != "wall"
            or not all(bounded(s.by) for s in specs)
            or any(s.min_volume for s in specs)  # the bounded pass ranks without a least volume
        )

    def bounded_pass(
        self, specs: list[TopSpec], ahead: int
    ) -> tuple[dict[TopSpec, list[Ranked]], dict[TopSpec, int], list[TokenView]]:
        """Each (window, by) ranked once, to the largest limit asked for it."""
        limits: dict[tuple[str, str], int] = {}
        for s in specs:
            limits[(s.window, s.by)] = max(s.limit, limits.get((s.window, s.by), 0))
        got = {
            key: self.bounded.top(key[0], key[1], limit, ahead_ms=ahead)
            for key, limit in limits.items()
        }
        views: dict[str, TokenView] = {}
        for ranking in got.values():
            for v in ranking.views:
                if v.token not in views or views[v.token].at < v.at:
                    views[v.token] = v
        orders = {s: got[(s.window, s.by)].rows[: s.limit] for s in specs}
        ats = {s: got[(s.window, s.by)].at for s in specs}
        return orders, ats, list(views.values())

    def publish_rankings(
        self,
        specs: list[TopSpec],
        orders: dict[TopSpec, list[Ranked]],
        ats: dict[TopSpec, int],
        views: list[TokenView],
    ) -> None:
        """Members changed: a ``top`` event and the new members' states to the spec's
        subscribers (the members' later changes reach them through ``dispatch``)."""
        by_token = {v.token: v for v in views}
        kept: dict[str, bytes] = {}
        for spec in specs:
            if spec not in self.by_top:  # its last subscriber left during the pass
                continue
            order = [r.token for r in orders[spec]]
            for token in order:
                kept.setdefault(token, update_event(by_token[token]))
            before = self.members.get(spec)
            self.members[spec] = order
            self.top_at[spec] = ats[spec]
            if before == order:
                continue
            fresh = [t for t in order if t not in set(before or ())]
            targets = list(self.by_top.get(spec, ()))
            self.deliver(targets, TOP_KEY, top_event(spec, order, ats[spec]))
            for token in fresh:
                self.deliver(targets, token, kept[token])
        self.latest = kept
        self.flush()

    def _greet(self, sub: Subscriber, spec: TopSpec) -> None:
        """A new ranking subscriber: the current order and its members' latest states."""
        order = self.members[spec]
        sub.offer(TOP_KEY, top_event(spec, order, self.top_at.get(spec, 0)))
        for token in order:
            if token in self.latest:
                sub.offer(token, self.latest[token])
