"""Exact reads of a token's windows as of an instant (used by show, top, stats).

A read never writes: ``read_window.lua`` starts from the stored state and
slides the windows forward in memory, so the answer is exact whatever the
janitor has or hasn't done. If the stored state fails its checks (damage, or
a reader configured with other windows than the workers), the windows are
counted from the list in memory; repairing is left to the writers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis

from tradeagg.contract.keys import token_keys
from tradeagg.engine.apply import now_ms, windows_arg
from tradeagg.errors import StoreError, UsageError
from tradeagg.logs import kv
from tradeagg.settings import Settings
from tradeagg.store.connection import store_error, text
from tradeagg.store.scripts import Scripts

log = logging.getLogger("tradeagg.reader")

COUNT_FIELDS = ("buys", "sells")
VOLUME_FIELDS = ("buy_volume", "sell_volume", "volume")
PRICE_FIELDS = ("open", "close")


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

    @property
    def trades(self) -> int:
        return self.buys + self.sells


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

    def __init__(self, client: Any, settings: Settings, scripts: Scripts | None = None) -> None:
        self.client = client
        self.settings = settings
        self.scripts = scripts or Scripts(client)
        self._windows = windows_arg(settings)

    def read(self, token: str, at: int | None = None) -> TokenView:
        """The token's windows as of ``at``; never writes.

        With ``at=None`` and the wall clock, "now" is the later of this
        machine's clock and the token's last_update (a worker's clock may be a
        little ahead of ours).
        """
        defaulted = at is None
        if defaulted and self.settings.clock == "wall":
            at = now_ms()
        raw = self._call(token, at)
        if defaulted and text(raw[0]) == "past":
            at = int(raw[2])
            raw = self._call(token, at)
        return self.view(token, at, raw)

    def view(self, token: str, at: int | None, raw: list[Any]) -> TokenView:
        """A TokenView from ``read_window.lua``'s answer."""
        status = text(raw[0])
        if status == "unknown":
            at = now_ms() if at is None else at
            return TokenView(
                token, at, None, {w.label: WindowView() for w in self.settings.windows}
            )
        if status == "past":
            raise UsageError(
                f"--at {text(raw[1])} is earlier than last_update {text(raw[2])} of token {token}"
            )
        if status != "ok":
            raise StoreError(f"token {token}: unexpected answer {status!r}")
        if raw[3]:
            log.warning("read counted from the list %s", kv(token=token, reason=text(raw[3])))
        windows: dict[str, WindowView] = {}
        for i in range(4, len(raw), 9):
            label, b, s, bv, sv, v, o, c, pct = raw[i : i + 9]
            windows[text(label)] = WindowView(
                buys=int(b),
                sells=int(s),
                buy_volume=_dec(bv),
                sell_volume=_dec(sv),
                volume=_dec(v),
                open=_dec(o) if o else None,
                close=_dec(c) if c else None,
                price_change_pct=float(pct) if pct else None,
            )
        return TokenView(token, int(raw[1]), int(raw[2]), windows)

    def read_many(self, tokens: Iterable[str], at: int | None = None) -> list[TokenView]:
        return [self.read(t, at) for t in tokens]

    def _call(self, token: str, at: int | None) -> list[Any]:
        try:
            return self.scripts.read_window(
                keys=token_keys(token), args=["" if at is None else at, self._windows]
            )
        except redis.RedisError as exc:
            raise store_error(f"read of token {token} failed", exc) from None


def exact(d: Decimal) -> str:
    """An exact decimal as plain text (JSON number text too), without trailing zeros."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def window_json(w: WindowView) -> str:
    parts = [f'"buys": {w.buys}', f'"sells": {w.sells}']
    parts += [f'"{name}": {exact(getattr(w, name))}' for name in VOLUME_FIELDS]
    parts += [
        f'"{name}": {"null" if getattr(w, name) is None else exact(getattr(w, name))}'
        for name in PRICE_FIELDS
    ]
    pct = "null" if w.price_change_pct is None else json.dumps(w.price_change_pct)
    parts.append(f'"price_change_pct": {pct}')
    return "{" + ", ".join(parts) + "}"


def view_json(view: TokenView) -> str:
    """One line of ``show --json``; volumes and prices are exact JSON numbers."""
    windows = ", ".join(f"{json.dumps(k)}: {window_json(w)}" for k, w in view.windows.items())
    return f'{{"token": {json.dumps(view.token)}, "at": {view.at}, "windows": {{{windows}}}}}'
