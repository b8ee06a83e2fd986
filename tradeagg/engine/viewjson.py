"""The read model's documents as JSON text, built directly (the serve and feed hot paths).

``contract.documents`` declares the ``show --json`` / ``top --json`` documents
(marshmallow) and the commands dump through it; that costs ~120 µs a token
view, and the SSE hub, ``/v1/*`` and the Kafka output write one per change.
These writers give the same text (``tests/unit/test_viewjson.py`` compares
them with the marshmallow dump over random views) at a fraction of the cost.
The window metrics come from ``WINDOW_METRICS``, the list the read model
parses, so a metric added there is written here without an edit; the
screener's five only when the window carries them (``makers`` not None). Values are
written by type as ``contract.exactjson`` writes them: Decimals exact.
"""

from __future__ import annotations

import json
from decimal import Decimal
from math import isfinite
from operator import attrgetter
from typing import Any

from tradeagg.contract.exactjson import dumps, number
from tradeagg.engine.read import LUA_METRICS, SEED_METRICS, WINDOW_METRICS

_HEADS = tuple(f"{json.dumps(m)}: " for m in WINDOW_METRICS)
_VALUES = attrgetter(*WINDOW_METRICS)
_SEED = len(SEED_METRICS)
_SCREENED = len(LUA_METRICS)


def value(v: Any) -> str:
    """One metric as JSON text; the types the read model holds first, the rest as exactjson."""
    kind = type(v)
    if kind is int:
        return str(v)
    if kind is Decimal:
        return number(v)
    if v is None:
        return "null"
    if kind is float and isfinite(v):
        return repr(v)  # what json.dumps writes for a finite float
    return dumps(v)


def _metrics(w: Any) -> str:
    """A window's metrics without braces: ``"buys": 1, "sells": 0, ...``, then its
    coverage: ``"partial": false, "complete_from": null`` (contract.documents)."""
    values = _VALUES(w) if len(_HEADS) > 1 else (_VALUES(w),)
    pairs = zip(_HEADS, values, strict=True)
    if w.makers is None:  # not kept (TRADEAGG_METRICS=seed): omitted, never a fake 0 or null
        pairs = zip(_HEADS[:_SEED], values[:_SEED], strict=True)
    elif w.prev_buys is None:  # previous windows not kept (Settings.prev_metrics)
        pairs = zip(_HEADS[:_SCREENED], values[:_SCREENED], strict=True)
    metrics = f'"kind": {json.dumps(w.kind)}, "from": {value(w.start)}, ' + ", ".join(
        [h + value(v) for h, v in pairs]
    )
    since = w.complete_from
    if since is None:
        return metrics + ', "partial": false, "complete_from": null'
    return f'{metrics}, "partial": true, "complete_from": {value(since)}'


def view_json(view: Any) -> str:
    """``contract.documents.token_json(view)``: the ``show --json`` object, one line."""
    windows = ", ".join(
        [f"{json.dumps(label)}: {{{_metrics(w)}}}" for label, w in view.windows.items()]
    )
    return f'{{"token": {json.dumps(view.token)}, "at": {view.at}, "windows": {{{windows}}}}}'


def row_json(row: Any, ranking: Any) -> str:
    """``contract.documents.rank_json(row, ranking)``: one ``top --json`` row, one line."""
    view = row.view
    return (
        f'{{"rank": {row.rank}, "token": {json.dumps(view.token)}, "at": {view.at}, '
        f'"window": {json.dumps(ranking.window)}, "by": {json.dumps(ranking.by)}, '
        f"{_metrics(view.windows[ranking.window])}}}"
    )
