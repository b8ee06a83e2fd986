"""Assertions shared by tests: engine reads against the brute-force reference.

``METRICS`` is the one list of per-window metrics of the contract (§2) that
every comparison covers; a metric added to the contract is added here, and
every comparison checks it from then on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from tests.support import reference
from tradeagg.contract.trade import Trade
from tradeagg.engine.read import PREV_METRICS, WINDOW_METRICS, Reader
from tradeagg.settings import Window

METRICS = WINDOW_METRICS  # every window metric, in document order (engine/read.py)
COUNTS = ("buys", "sells", "makers", "buyers", "sellers", "prev_buys", "prev_sells", "prev_makers")
PREV = PREV_METRICS
FLOATS = ("price_change_pct", "volume_change_pct")  # the floating-point ones; others exact


def metrics_of(window: Any) -> Mapping[str, Any]:
    """A window's metrics by name: a WindowView, or a ``show --json`` window as parsed."""
    if isinstance(window, Mapping):
        return window
    return {m: getattr(window, m) for m in METRICS}


def stored_metrics(aggregates: Mapping[Any, Any], label: str) -> dict[str, Any]:
    """The metrics of window ``label`` as stored in ``token:{A}:aggregates`` (absent: null)."""
    raw = {(k.decode() if isinstance(k, bytes) else k): v for k, v in aggregates.items()}
    out: dict[str, Any] = {}
    for m in METRICS:
        v = raw.get(f"{label}:{m}")
        v = v.decode() if isinstance(v, bytes) else v
        if m in COUNTS:
            out[m] = int(v) if v is not None else 0
        elif m in FLOATS:
            out[m] = float(v) if v is not None else None
        elif m in ("open", "close", "high", "low"):
            out[m] = Decimal(v) if v is not None else None
        elif m == "prev_complete_from":
            out[m] = int(v) if v is not None else None
        else:
            out[m] = Decimal(v) if v is not None else Decimal(0)
    return out


def _same(metric: str, got: Any, want: Any) -> bool:
    if metric not in FLOATS or got is None or want is None:
        return got == want
    return math.isclose(float(got), want, rel_tol=1e-12, abs_tol=1e-9)


def window_mismatches(got: Any, want: Mapping[str, Any]) -> list[str]:
    """``metric: got != want`` for each metric of ``METRICS`` that differs (the previous
    window's only when ``want`` has them: ``reference.windows`` with ``bucket_ms``)."""
    g = metrics_of(got)
    return [
        f"{m}: {g.get(m)!r} != {want[m]!r}"
        for m in METRICS
        if (m in want or m not in PREV) and not _same(m, g.get(m), want[m])
    ]


def reference_mismatches(
    reader: Reader, trades: list[Trade], at: int, ws: Iterable[Window], tokens: Iterable[str]
) -> list[str]:
    """Every (token, window, metric) read at ``at`` that differs from the brute-force reference
    (windows beyond the reader's TRADEAGG_EXACT_HORIZON bucketed, CONTRACT §2c)."""
    ws = list(ws)
    bad = []
    s = reader.settings
    for token in tokens:
        mine = [t for t in trades if t.token == token]
        # the previous windows' metrics are kept with the screener's (Settings.prev_metrics)
        want = reference.windows(mine, at, ws, s.exact_horizon_ms, s.bucket_ms, reader.prev)
        got = reader.read(token, at)
        for w in ws:
            since = got.windows[w.label].prev_complete_from
            if since is not None:  # partial: the trades after since - 2w (and said so)
                ordered = reference.distinct(mine)
                want[w.label].update(
                    reference.previous(
                        ordered, at, w, s.bucket_ms, want[w.label]["volume"], since - 2 * w.ms
                    ),
                    prev_complete_from=since,
                )
            bad += [
                f"{token} {w.label} at {at}: {d}"
                for d in window_mismatches(got.windows[w.label], want[w.label])
            ]
    return bad


def assert_matches_reference(
    reader: Reader, trades: list[Trade], at: int, ws: Iterable[Window], tokens: Iterable[str]
) -> None:
    """Every metric of every window of every token read at ``at`` equals the reference."""
    bad = reference_mismatches(reader, trades, at, ws, tokens)
    assert bad == [], "\n".join(bad[:20])
