"""Assertions shared by tests: engine reads against the brute-force reference."""

from __future__ import annotations

from collections.abc import Iterable

from tests.support import reference
from tradeagg.contract.trade import Trade
from tradeagg.engine.read import Reader
from tradeagg.settings import Window


def assert_matches_reference(
    reader: Reader, trades: list[Trade], at: int, ws: Iterable[Window], tokens: Iterable[str]
) -> None:
    """Every window of every token read at ``at`` equals the brute-force computation."""
    ws = list(ws)
    for token in tokens:
        want = reference.windows([t for t in trades if t.token == token], at, ws)
        got = reader.read(token, at)
        for w in ws:
            g, r = got.windows[w.label], want[w.label]
            assert (g.buys, g.sells) == (r["buys"], r["sells"]), (token, w.label, at)
            assert (g.buy_volume, g.sell_volume, g.volume) == (
                r["buy_volume"],
                r["sell_volume"],
                r["volume"],
            ), (token, w.label, at)
            assert (g.open, g.close) == (r["open"], r["close"]), (token, w.label, at)
            if r["price_change_pct"] is None:
                assert g.price_change_pct is None
            else:
                assert abs(g.price_change_pct - r["price_change_pct"]) <= 1e-9 * max(
                    1.0, abs(r["price_change_pct"])
                )
