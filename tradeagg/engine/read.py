"""Exact reads of a token's windows as of an instant (used by show, top, stats).

``read_window.lua`` starts from the stored state and slides the windows
forward in memory, so the answer is exact whatever the janitor has or hasn't
done. That script never writes and its work is bounded: a read so far ahead of
a token's last_update that a walk would pass SLIDE_MAX list elements answers
"behind"; the reader then does the janitor's job for that token
(``Engine.catch_up``: bounded ``apply_trades`` calls, to ``at`` but never past
Redis' clock) and reads again. A read ahead of Redis' clock by more than a
read's bounded work (after that catch-up) raises ``FarAhead``. A window the
token does not carry (a reader configured with other windows than the
workers) is counted from the list in memory, at most SEED_MAX elements; if the
stored state fails its checks (damage), every window is (short lists only).
Repairing is left to the writers. A window the list was not kept long enough
for, or not counted in full yet (a window being added), is partial:
``WindowView.complete_from`` says from when it is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import gevent
import redis

from tradeagg.clock import now_ms
from tradeagg.contract.documents import PREV_FIELDS
from tradeagg.contract.keys import token_keys
from tradeagg.engine.apply import Engine
from tradeagg.engine.args import at_arg, check_at, windows_arg
from tradeagg.errors import FarAhead, PastInstant, StoreError, TokenRebuilding
from tradeagg.logs import kv
from tradeagg.settings import Settings
from tradeagg.store.connection import is_cluster, store_error, text
from tradeagg.store.scripts import Scripts

log = logging.getLogger("tradeagg.reader")

# A window in read_window.lua's answer: its label, its complete_from (or nil), then
# METRICS of lua/lib/windows.lua in that order (tests/unit/test_read_fields.py holds
# the two lists together); the screener's five only with TRADEAGG_METRICS=full
SEED_METRICS = (
    "buys",
    "sells",
    "buy_volume",
    "sell_volume",
    "volume",
    "open",
    "close",
    "price_change_pct",
)
SCREENER_METRICS = ("makers", "buyers", "sellers", "high", "low")
# the previous window's (CONTRACT §2b; lua/lib/prev.lua), also only with
# TRADEAGG_METRICS=full: read_window.lua answers them after every window, per
# window its label, prev_buys, prev_sells, prev_volume, prev_makers and prev_complete_from;
# volume_change_pct is computed here from the exact volumes
PREV_METRICS = PREV_FIELDS  # (contract.documents declares them, in document order)
PREV_PER_WINDOW = 6
LUA_METRICS = SEED_METRICS + SCREENER_METRICS  # lua/lib/windows.lua's METRICS
WINDOW_METRICS = LUA_METRICS + PREV_METRICS
PER_WINDOW = 2 + len(LUA_METRICS)  # with the screener's (TRADEAGG_METRICS=full)
BATCH = 500  # reads per pipeline: a few thousand tokens cost a few round trips
# Tokens per read_window.lua call: every call first runs the assembled library's top
# level and parses the windows (~150 µs of Redis time, about a third of a read in
# full mode), paid once per call; 16 tokens make it a few percent of each read while
# one call (16 tokens' work, a few ms at most) still blocks Redis only briefly. On a
# Redis Cluster a call's keys must share a slot: one token per call there.
READ_GROUP = 16
YIELD_EVERY = 50  # views parsed between two yields to other greenlets


@dataclass(frozen=True)
class WindowView:
    buys: int = 0
    sells: int = 0
    buy_volume: Decimal = Decimal(0)
    sell_volume: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)
    open: Decimal | None = None
    close: Decimal | None = None
    price_change_pct: float | None = None
    # the screener's (CONTRACT §2b): None when not kept (TRADEAGG_METRICS=seed); then
    # the documents omit all five. Kept, an empty window has 0, 0, 0, None, None.
    makers: int | None = None
    buyers: int | None = None
    sellers: int | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    # the previous window (CONTRACT §2b), kept with the screener's: None when not kept
    prev_buys: int | None = None
    prev_sells: int | None = None
    prev_volume: Decimal | None = None
    # distinct traders of the previous window (lua/lib/pmakers.lua); None also while
    # not known (a worker of an earlier release wrote the token last)
    prev_makers: int | None = None
    volume_change_pct: float | None = None
    # the previous window's buckets are kept from prev_complete_from - 2w on only
    # (a token written before they were, or rebuilt): partial until then
    prev_complete_from: int | None = None
    # partial: the list was not kept long enough for this window (it was added
    # to the token later, by a release with a longer window); exact from then on
    complete_from: int | None = None
    # CONTRACT §2c: "exact" (at - w < ts <= at) or "bucketed" (a window beyond
    # TRADEAGG_EXACT_HORIZON: start < ts <= at, start = ceil((at - w) / r) * r);
    # start is written "from" in the documents; it follows from the view's at (not
    # compared: two views of the same content read at other instants are equal)
    kind: str = "exact"
    start: int = field(default=0, compare=False)

    @property
    def trades(self) -> int:
        return self.buys + self.sells

    @property
    def partial(self) -> bool:
        return self.complete_from is not None

    @property
    def screened(self) -> bool:
        """Whether this window carries the screener metrics (TRADEAGG_METRICS=full)."""
        return self.makers is not None


EMPTY_SCREENED = WindowView(makers=0, buyers=0, sellers=0)
EMPTY_PREV = replace(
    EMPTY_SCREENED, prev_buys=0, prev_sells=0, prev_volume=Decimal(0), prev_makers=0
)
EMPTY_PREV_UNKEPT = replace(EMPTY_PREV, prev_makers=None)  # TRADEAGG_PREV_MAKERS=off


@dataclass(frozen=True)
class TokenView:
    token: str
    at: int
    last_update: int | None
    windows: dict[str, WindowView] = field(default_factory=dict)


def _dec(v: Any) -> Decimal:
    return Decimal(text(v))


def _with_prev(view: WindowView, raw: Sequence[Any]) -> WindowView:
    """``view`` with its previous window's metrics (``lua/lib/prev.lua``'s answer:
    prev_buys, prev_sells, prev_volume, prev_makers|false, prev_complete_from|false)."""
    prev = _dec(raw[2])
    pct = float((view.volume - prev) / prev * 100) if prev else None
    return replace(
        view,
        prev_buys=int(raw[0]),
        prev_sells=int(raw[1]),
        prev_volume=prev,
        prev_makers=int(raw[3]) if raw[3] else None,
        volume_change_pct=pct,
        prev_complete_from=int(raw[4]) if raw[4] else None,
    )


class Reader:
    """Reads TokenViews; ``at=None`` means now (wall clock) or last_update (event clock)."""

    def __init__(
        self, client: Any, settings: Settings, scripts: Scripts | None = None, batch: int = BATCH
    ) -> None:
        self.client = client
        self.settings = settings
        self.scripts = scripts or Scripts(client)
        self.batch = batch
        self._windows = windows_arg(settings)
        self.screener = settings.metrics == "full"
        self.long = bool(settings.long_windows)
        self.prev = settings.prev_metrics
        self.prev_makers = settings.keeps_prev_makers
        self._ms = {w.label: w.ms for w in settings.windows}
        self._per = PER_WINDOW if self.screener else 2 + len(SEED_METRICS)
        self._engine: Engine | None = None
        self._group = 1 if is_cluster(client) else READ_GROUP

    @property
    def engine(self) -> Engine:
        """The writer a read far ahead of a token's last_update catches it up with."""
        if self._engine is None:
            self._engine = Engine(self.client, self.settings, self.scripts)
        return self._engine

    def read(self, token: str, at: int | None = None) -> TokenView:
        """The token's windows as of ``at``; never writes.

        With ``at=None`` and the wall clock, "now" is the later of this
        machine's clock and the token's last_update (a worker's clock may be a
        little ahead of ours). An ``at`` before the token's last_update raises
        ``PastInstant``.
        """
        return self.read_many([token], at)[0]

    def read_many(self, tokens: Iterable[str], at: int | None = None) -> list[TokenView]:
        """``[read(t, at) for t in tokens]`` in a few round trips (``batch`` reads per pipeline).

        With an explicit ``at``, every token is read as of it; if any answers
        that its last_update is later, ``PastInstant`` names the first such
        token and carries the newest such last_update (``Ranker`` aims there).
        """
        tokens = list(tokens)
        defaulted = check_at(at) is None
        if defaulted and self.settings.clock == "wall":
            at = now_ms()
        raws = self.fetch(tokens, [at] * len(tokens))
        ats: list[int | None] = [at] * len(tokens)
        behind = [i for i, raw in enumerate(raws) if text(raw[0]) == "behind"]
        if behind and at is not None:
            carried = {tokens[i]: text(raws[i][4]) for i in behind}
            self.catch_up([tokens[i] for i in behind], at, carried)
            again = self.fetch([tokens[i] for i in behind], [at] * len(behind))
            for i, raw in zip(behind, again, strict=True):
                raws[i] = raw
        past = [i for i, raw in enumerate(raws) if text(raw[0]) == "past"]
        if past and not defaulted:
            newest = max(int(raws[i][2]) for i in past)
            first = past[0]
            raise PastInstant(int(text(raws[first][1])), int(raws[first][2]), tokens[first], newest)
        if past:  # applied after our "now" (or a worker's clock ahead of ours): read those
            # as of their own last_update, whatever it is by then: a token moving again
            # meanwhile is read as of its newer state, never "past" (one round, no retry)
            again = self.fetch([tokens[i] for i in past], [None] * len(past))
            for i, raw in zip(past, again, strict=True):
                raws[i] = raw
                ats[i] = None
        views = []
        for i, (t, a, raw) in enumerate(zip(tokens, ats, raws, strict=True)):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                gevent.sleep(0)  # a long parse lets other greenlets (SSE clients) run
            views.append(self.view(t, a, raw))
        return views

    def catch_up(
        self, tokens: Sequence[str], at: int, windows: dict[str, str] | None = None
    ) -> None:
        """Slide ``tokens`` toward ``at`` (never past Redis' clock) in bounded calls.

        Only for tokens whose read answered "behind": the stored state moves as
        the janitor would move it, so a read of ``at`` afterwards is exact and
        bounded (unless ``at`` lies far past Redis' clock: ``FarAhead``).
        ``windows``: each token's carried windows, as the read answered them
        (the reader's own windows are not added to a token).
        """
        done = self.engine.catch_up(tokens, at, windows)
        for token in tokens:
            r = done.get(token)
            if r is not None and r.rebuilding:
                raise TokenRebuilding(f"token {token} is being rebuilt from its list; try again")

    def fetch(self, tokens: Sequence[str], ats: Sequence[int | None]) -> list[list[Any]]:
        """``read_window.lua``'s raw answers for ``tokens``, each as of its ``ats`` entry.

        Up to READ_GROUP tokens are one script call (one on a cluster); more calls
        are pipelined, ``batch`` tokens at a time. The answers come in ``tokens``' order.
        """
        if len(tokens) == 1:
            return [self._call(tokens[0], ats[0])]
        out: list[list[Any]] = []
        try:
            for i in range(0, len(tokens), self.batch):
                pipe = self.client.pipeline(transaction=False)
                part, part_ats = tokens[i : i + self.batch], ats[i : i + self.batch]
                for j in range(0, len(part), self._group):
                    self._script(part[j : j + self._group], part_ats[j : j + self._group], pipe)
                for answers in pipe.execute():
                    for raw in answers:
                        if isinstance(raw, redis.RedisError):  # that token's read failed
                            raise raw
                        out.append(raw)
        except redis.RedisError as exc:
            raise store_error("batched read failed", exc) from None
        return out

    def _script(self, tokens: Sequence[str], ats: Sequence[int | None], client: Any = None) -> Any:
        """One ``read_window.lua`` call for ``tokens`` (on ``client``: a pipeline, or ours)."""
        keys: list[str] = []
        for token in tokens:
            keys.extend(
                token_keys(token, self.screener, self.long or self.prev, self.prev_makers)
            )
        return self.scripts.read_window(
            keys=keys, args=[self._windows, *(at_arg(at) for at in ats)], client=client
        )

    def _placed(self, label: str, at: int, view: WindowView) -> WindowView:
        """``view`` with its kind and start as of ``at`` (CONTRACT §2c)."""
        ms = self._ms.get(label)
        if ms is None:
            return view
        kind = "exact" if ms <= self.settings.exact_horizon_ms else "bucketed"
        return replace(view, kind=kind, start=self.settings.window_start(at, ms))

    def view(self, token: str, at: int | None, raw: list[Any]) -> TokenView:
        """A TokenView from ``read_window.lua``'s answer."""
        status = text(raw[0])
        if status == "unknown":
            at = now_ms() if at is None else at
            empty = WindowView()
            if self.screener:
                empty = EMPTY_SCREENED
                if self.prev:
                    empty = EMPTY_PREV if self.prev_makers else EMPTY_PREV_UNKEPT
            return TokenView(
                token, at, None, {w.label: self._placed(w.label, at, empty) for w in self.settings.windows}
            )
        if status == "past":
            raise PastInstant(int(text(raw[1])), int(raw[2]), token)
        if status == "rebuilding":
            raise TokenRebuilding(f"token {token} is being rebuilt from its list; try again")
        if status == "behind":  # still, after catching up: at lies past Redis' clock
            raise FarAhead(int(text(raw[1])), int(raw[2]), token)
        if status != "ok":
            raise StoreError(f"token {token}: unexpected answer {status!r}")
        if raw[3]:
            log.warning("read counted from the list %s", kv(token=token, reason=text(raw[3])))
        windows: dict[str, WindowView] = {}
        per = self._per
        names = LUA_METRICS if self.screener else SEED_METRICS
        end = 4 + per * len(self._ms) if self.prev else len(raw)
        for i in range(4, end, per):
            m = dict(zip(names, raw[i + 2 : i + per], strict=True))
            o, c, pct = m["open"], m["close"], m["price_change_pct"]
            screened = {}
            if self.screener:
                hi, lo = m["high"], m["low"]
                screened = {
                    "makers": int(m["makers"]),
                    "buyers": int(m["buyers"]),
                    "sellers": int(m["sellers"]),
                    "high": _dec(hi) if hi else None,
                    "low": _dec(lo) if lo else None,
                }
            label = text(raw[i])
            windows[label] = WindowView(
                buys=int(m["buys"]),
                sells=int(m["sells"]),
                buy_volume=_dec(m["buy_volume"]),
                sell_volume=_dec(m["sell_volume"]),
                volume=_dec(m["volume"]),
                open=_dec(o) if o else None,
                close=_dec(c) if c else None,
                price_change_pct=float(pct) if pct else None,
                complete_from=int(raw[i + 1]) if raw[i + 1] else None,
                **screened,
            )
        for i in range(end, len(raw), PREV_PER_WINDOW):
            label = text(raw[i])
            windows[label] = _with_prev(windows[label], raw[i + 1 : i + PREV_PER_WINDOW])
        at = int(raw[1])
        return TokenView(
            token, at, int(raw[2]), {k: self._placed(k, at, v) for k, v in windows.items()}
        )

    def _call(self, token: str, at: int | None) -> list[Any]:
        try:
            raw = self._script([token], [at])[0]
            if isinstance(raw, redis.RedisError):  # the token's read failed
                raise raw
            return raw
        except redis.RedisError as exc:
            raise store_error(f"read of token {token} failed", exc) from None
