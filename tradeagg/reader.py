"""Exact reads of a token's windows as of an instant (used by show, top, stats).

A read never writes: ``read_window.lua`` starts from the stored state and
slides the windows forward in memory, so the answer is exact whatever the
janitor has or hasn't done. If the stored state fails its checks, the reader
has the engine repair the token (a zero-trade apply) and reads again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis

from tradeagg.engine import Engine, now_ms, windows_arg
from tradeagg.errors import StoreError, UsageError
from tradeagg.keys import token_keys
from tradeagg.scripts import Scripts
from tradeagg.settings import Settings

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


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _dec(v: Any) -> Decimal:
    return Decimal(_text(v))


class Reader:
    """Reads TokenViews; ``at=None`` means now (wall clock) or last_update (event clock)."""

    def __init__(
        self,
        client: Any,
        settings: Settings,
        scripts: Scripts | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.scripts = scripts or Scripts(client)
        self.engine = engine or Engine(client, settings, self.scripts)
        self._windows = windows_arg(settings)

    def read(self, token: str, at: int | None = None) -> TokenView:
        if at is None and self.settings.clock == "wall":
            at = now_ms()
        raw = self._call(token, at)
        if _text(raw[0]) == "corrupt":
            self.engine.advance([token], now=at)
            raw = self._call(token, at)
        status = _text(raw[0])
        if status == "unknown":
            return TokenView(
                token, at or 0, None, {w.label: WindowView() for w in self.settings.windows}
            )
        if status == "past":
            raise UsageError(
                f"--at {_text(raw[1])} is earlier than last_update {_text(raw[2])} of token {token}"
            )
        if status != "ok":
            raise StoreError(f"token {token}: {_text(raw[1]) if len(raw) > 1 else status}")
        windows: dict[str, WindowView] = {}
        for i in range(3, len(raw), 9):
            label, b, s, bv, sv, v, o, c, pct = raw[i : i + 9]
            windows[_text(label)] = WindowView(
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
            raise StoreError(f"read of token {token} failed: {exc}") from None


def _num(d: Decimal) -> str:
    """An exact decimal as JSON number text, without trailing zeros."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def window_json(w: WindowView) -> str:
    parts = [f'"buys": {w.buys}', f'"sells": {w.sells}']
    parts += [f'"{name}": {_num(getattr(w, name))}' for name in VOLUME_FIELDS]
    parts += [
        f'"{name}": {"null" if getattr(w, name) is None else _num(getattr(w, name))}'
        for name in PRICE_FIELDS
    ]
    pct = "null" if w.price_change_pct is None else json.dumps(w.price_change_pct)
    parts.append(f'"price_change_pct": {pct}')
    return "{" + ", ".join(parts) + "}"


def view_json(view: TokenView) -> str:
    """One line of ``show --json``; volumes and prices are exact JSON numbers."""
    windows = ", ".join(f"{json.dumps(k)}: {window_json(w)}" for k, w in view.windows.items())
    return f'{{"token": {json.dumps(view.token)}, "at": {view.at}, "windows": {{{windows}}}}}'
