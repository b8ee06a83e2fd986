"""The brute-force reference: every window computed from the raw trade set.

This is the definition of correct that tests and `tradeagg bench --verify` hold
the engine to (CONTRACT §2): no state, no increments, just the set and `at`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from tradeagg.contract.trade import Trade
from tradeagg.settings import Window


def distinct(trades: Iterable[Trade]) -> list[Trade]:
    """One trade per id, in (ts, seq, id) order."""
    seen: dict[str, Trade] = {}
    for t in trades:
        seen.setdefault(t.id, t)
    return sorted(seen.values(), key=lambda t: (t.ts, t.seq, t.id))


def window(trades: list[Trade], at: int, w: Window) -> dict:
    """Metrics of window ``w`` at ``at`` over distinct, ordered trades.

    Screener metrics (CONTRACT §2b): makers / buyers / sellers count distinct
    ``trader`` values (a trade of no trader, ``""``, counts in none of them),
    high / low are the extreme prices (None when the window is empty).
    """
    inside = [t for t in trades if at - w.ms < t.ts <= at]
    buys = [t for t in inside if t.side == "buy"]
    sells = [t for t in inside if t.side == "sell"]
    bv = sum((t.quote for t in buys), Decimal(0))
    sv = sum((t.quote for t in sells), Decimal(0))
    out = {
        "buys": len(buys),
        "sells": len(sells),
        "buy_volume": bv,
        "sell_volume": sv,
        "volume": bv + sv,
        "open": None,
        "close": None,
        "price_change_pct": None,
        "makers": len({t.trader for t in inside if t.trader}),
        "buyers": len({t.trader for t in buys if t.trader}),
        "sellers": len({t.trader for t in sells if t.trader}),
        "high": max((Decimal(t.price) for t in inside), default=None),
        "low": min((Decimal(t.price) for t in inside), default=None),
    }
    if inside:
        o, c = Decimal(inside[0].price), Decimal(inside[-1].price)
        out["open"], out["close"] = o, c
        out["price_change_pct"] = float((c - o) / o * 100)
    return out


def windows(trades: Iterable[Trade], at: int, ws: Iterable[Window]) -> dict[str, dict]:
    ordered = distinct(trades)
    return {w.label: window(ordered, at, w) for w in ws}
