"""Exact reads of a token's windows as of an instant (used by show, top, stats).

A read never writes: ``read_window.lua`` starts from the stored state and
slides the windows forward in memory, so the answer is exact whatever the
janitor has or hasn't done. A window the token does not carry (a reader
configured with other windows than the workers) is counted from the list in
memory; if the stored state fails its checks (damage), every window is.
Repairing is left to the writers. A window the list was not kept long enough
for is partial: ``WindowView.complete_from`` says from when it is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import gevent
import redis

from tradeagg.clock import now_ms
from tradeagg.contract.keys import token_keys
from tradeagg.engine.args import at_arg, check_at, windows_arg
from tradeagg.errors import PastInstant, StoreError, TokenRebuilding
from tradeagg.logs import kv
from tradeagg.settings import Settings
from tradeagg.store.connection import store_error, text
from tradeagg.store.scripts import Scripts

log = logging.getLogger("tradeagg.reader")

# A window in read_window.lua's answer: its label, its complete_from (or nil), then
# METRICS of lua/lib/windows.lua in that order (tests/unit/test_read_fields.py holds
# the two lists together)
WINDOW_METRICS = (
    "buys",
    "sells",
    "buy_volume",
    "sell_volume",
    "volume",
    "open",
    "close",
    "price_change_pct",
)
PER_WINDOW = 2 + len(WINDOW_METRICS)
BATCH = 500  # reads per pipeline: a few thousand tokens cost a few round trips
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
    # partial: the list was not kept long enough for this window (it was added
    # to the token later, by a release with a longer window); exact from then on
    complete_from: int | None = None

    @property
    def trades(self) -> int:
        return self.buys + self.sells

    @property
    def partial(self) -> bool:
        return self.complete_from is not None


@dataclass(frozen=True)
class TokenView:
    token: str
    at: int
    last_update: int | None
    windows: dict[str, WindowView] = field(default_factory=dict)


def _dec(v: Any) -> Decimal:
    return Decimal(text(v))


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

    def fetch(self, tokens: Sequence[str], ats: Sequence[int | None]) -> list[list[Any]]:
        """``read_window.lua``'s raw answers for ``tokens``, each as of its ``ats`` entry.

        One token is one script call; more are pipelined ``batch`` at a time.
        """
        if len(tokens) == 1:
            return [self._call(tokens[0], ats[0])]
        out: list[list[Any]] = []
        try:
            for i in range(0, len(tokens), self.batch):
                pipe = self.client.pipeline(transaction=False)
                for token, at in zip(
                    tokens[i : i + self.batch], ats[i : i + self.batch], strict=True
                ):
                    self.scripts.read_window(
                        keys=token_keys(token), args=[at_arg(at), self._windows], client=pipe
                    )
                out.extend(pipe.execute())
        except redis.RedisError as exc:
            raise store_error("batched read failed", exc) from None
        return out

    def view(self, token: str, at: int | None, raw: list[Any]) -> TokenView:
        """A TokenView from ``read_window.lua``'s answer."""
        status = text(raw[0])
        if status == "unknown":
            at = now_ms() if at is None else at
            return TokenView(
                token, at, None, {w.label: WindowView() for w in self.settings.windows}
            )
        if status == "past":
            raise PastInstant(int(text(raw[1])), int(raw[2]), token)
        if status == "rebuilding":
            raise TokenRebuilding(f"token {token} is being rebuilt from its list; try again")
        if status != "ok":
            raise StoreError(f"token {token}: unexpected answer {status!r}")
        if raw[3]:
            log.warning("read counted from the list %s", kv(token=token, reason=text(raw[3])))
        windows: dict[str, WindowView] = {}
        for i in range(4, len(raw), PER_WINDOW):
            m = dict(zip(WINDOW_METRICS, raw[i + 2 : i + PER_WINDOW], strict=True))
            o, c, pct = m["open"], m["close"], m["price_change_pct"]
            windows[text(raw[i])] = WindowView(
                buys=int(m["buys"]),
                sells=int(m["sells"]),
                buy_volume=_dec(m["buy_volume"]),
                sell_volume=_dec(m["sell_volume"]),
                volume=_dec(m["volume"]),
                open=_dec(o) if o else None,
                close=_dec(c) if c else None,
                price_change_pct=float(pct) if pct else None,
                complete_from=int(raw[i + 1]) if raw[i + 1] else None,
            )
        return TokenView(token, int(raw[1]), int(raw[2]), windows)

    def _call(self, token: str, at: int | None) -> list[Any]:
        try:
            return self.scripts.read_window(
                keys=token_keys(token), args=[at_arg(at), self._windows]
            )
        except redis.RedisError as exc:
            raise store_error(f"read of token {token} failed", exc) from None
