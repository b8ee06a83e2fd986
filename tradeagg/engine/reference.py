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


def start(at: int, w: Window, horizon_ms: int | None = None, bucket_ms: int = 0) -> int:
    """Where window ``w`` starts at ``at``: ``at - w``, or for a window longer than
    ``horizon_ms`` (bucketed, CONTRACT §2c) ``ceil((at - w) / r) * r``."""
    if horizon_ms is None or w.ms <= horizon_ms:
        return at - w.ms
    return -((w.ms - at) // bucket_ms) * bucket_ms


def window(trades: list[Trade], at: int, w: Window, since: int | None = None) -> dict:
    """Metrics of window ``w`` at ``at`` over distinct, ordered trades: those with
    ``since < ts <= at`` (``since`` default ``at - w``; ``start`` for bucketed windows).

    Screener metrics (CONTRACT §2b): makers / buyers / sellers count distinct
    ``trader`` values (a trade of no trader, ``""``, counts in none of them),
    high / low are the extreme prices (None when the window is empty).
    """
    lo = at - w.ms if since is None else since
    inside = [t for t in trades if lo < t.ts <= at]
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


def ceil_to(x: int, r: int) -> int:
    """The smallest multiple of ``r`` at or after ``x``."""
    return -(-x // r) * r


def previous(
    trades: list[Trade], at: int, w: Window, bucket_ms: int, volume: Decimal, since: int | None = None
) -> dict:
    """The previous-window metrics of ``w`` at ``at`` (CONTRACT §2b): the trades with
    ``ceil((at - 2w) / r) * r < ts <= ceil((at - w) / r) * r``; with ``since`` (a
    partial previous window) only those after it. ``volume``: the window's own."""
    lo = ceil_to(at - 2 * w.ms, bucket_ms)
    hi = ceil_to(at - w.ms, bucket_ms)
    if since is not None:
        lo = max(lo, since)
    inside = [t for t in trades if lo < t.ts <= hi]
    pv = sum((t.quote for t in inside), Decimal(0))
    return {
        "prev_buys": sum(1 for t in inside if t.side == "buy"),
        "prev_sells": sum(1 for t in inside if t.side == "sell"),
        "prev_volume": pv,
        "prev_makers": len({t.trader for t in inside if t.trader}),
        "volume_change_pct": float((volume - pv) / pv * 100) if pv else None,
        "prev_complete_from": None,
    }


def windows(
    trades: Iterable[Trade],
    at: int,
    ws: Iterable[Window],
    horizon_ms: int | None = None,
    bucket_ms: int = 0,
    prev: bool = True,
) -> dict[str, dict]:
    """Every window of ``ws`` at ``at``; with ``horizon_ms``, the longer ones bucketed;
    with ``bucket_ms`` and ``prev``, each with its previous window's metrics."""
    ordered = distinct(trades)
    out = {w.label: window(ordered, at, w, start(at, w, horizon_ms, bucket_ms)) for w in ws}
    if bucket_ms and prev:
        for w in ws:
            out[w.label].update(previous(ordered, at, w, bucket_ms, out[w.label]["volume"]))
    return out
