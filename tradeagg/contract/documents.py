"""The output documents of ``show --json`` and ``top --json`` (CONTRACT §4), declared once.

marshmallow's one role in tradeagg: the declarative statement of what a
reader of our JSON receives. ``dump`` builds each document from the read
models (``TokenView``, ``WindowView``: attributes of the same names), so
the commands cannot drift from the declaration, and ``load`` checks a
document against it (the tests feed it the real command output).
Numbers stay ``Decimal`` here; ``contract.exactjson`` prints them exactly.
The trade messages are validated elsewhere, by hand, on the hot path.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, post_dump, validate

from tradeagg.contract.address import ADDRESS_RE
from tradeagg.contract.exactjson import dumps


def _window_fields() -> dict[str, fields.Field]:
    """A window's metrics in output order (CONTRACT §2); null when the window is empty.

    Then the screener's (CONTRACT §2b) ``makers``, ``buyers``, ``sellers`` (counts
    of distinct traders) and ``high``, ``low`` (null when empty), then the previous
    window's ``prev_buys``, ``prev_sells``, ``prev_volume``, ``prev_makers`` (null
    while not known), ``volume_change_pct``
    (null when prev_volume is 0) and ``prev_complete_from`` (null, or the instant
    from which the previous window is complete): all omitted when the service
    does not keep them (TRADEAGG_METRICS=seed; ``makers`` None).
    First ``kind`` and ``from`` (CONTRACT §2c): ``exact`` windows start at
    ``at - w``, ``bucketed`` ones (beyond TRADEAGG_EXACT_HORIZON) at
    ``ceil((at - w) / r) * r``; the window holds the trades after ``from``.
    Then (additive) ``partial``: the token's list was not kept long enough for
    this window (added by a release with a longer window), so it may undercount
    until ``complete_from`` (epoch ms; null when complete).
    """
    amount = {"required": True, "allow_nan": False, "validate": validate.Range(min=0)}
    price = {"required": True, "allow_none": True, "allow_nan": False}
    return {
        # CONTRACT §2c: exact (at - w < ts <= at) or bucketed (from < ts <= at)
        "kind": fields.String(required=True, validate=validate.OneOf(("exact", "bucketed"))),
        "from": fields.Integer(required=True, strict=True, attribute="start"),
        "buys": fields.Integer(required=True, strict=True, validate=validate.Range(min=0)),
        "sells": fields.Integer(required=True, strict=True, validate=validate.Range(min=0)),
        "buy_volume": fields.Decimal(**amount),
        "sell_volume": fields.Decimal(**amount),
        "volume": fields.Decimal(**amount),
        "open": fields.Decimal(**price),
        "close": fields.Decimal(**price),
        "price_change_pct": fields.Float(required=True, allow_none=True, allow_nan=False),
        "makers": fields.Integer(strict=True, validate=validate.Range(min=0)),
        "buyers": fields.Integer(strict=True, validate=validate.Range(min=0)),
        "sellers": fields.Integer(strict=True, validate=validate.Range(min=0)),
        "high": fields.Decimal(allow_none=True, allow_nan=False),
        "low": fields.Decimal(allow_none=True, allow_nan=False),
        # the previous window (CONTRACT §2b), with the screener's
        "prev_buys": fields.Integer(strict=True, validate=validate.Range(min=0)),
        "prev_sells": fields.Integer(strict=True, validate=validate.Range(min=0)),
        "prev_volume": fields.Decimal(allow_nan=False, validate=validate.Range(min=0)),
        # null while not known (a worker of an earlier release wrote the token last)
        "prev_makers": fields.Integer(
            allow_none=True, strict=True, validate=validate.Range(min=0)
        ),
        "volume_change_pct": fields.Float(allow_none=True, allow_nan=False),
        "prev_complete_from": fields.Integer(
            allow_none=True, strict=True, validate=validate.Range(min=0)
        ),
        "partial": fields.Boolean(required=True),
        "complete_from": fields.Integer(
            required=True, strict=True, allow_none=True, validate=validate.Range(min=0)
        ),
    }


def _address() -> fields.String:
    return fields.String(required=True, validate=validate.Regexp(ADDRESS_RE))


def _instant() -> fields.Integer:
    return fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class _Strict(Schema):
    class Meta:
        unknown = RAISE


SCREENER_FIELDS = ("makers", "buyers", "sellers", "high", "low")
PREV_FIELDS = (
    "prev_buys",
    "prev_sells",
    "prev_volume",
    "prev_makers",
    "volume_change_pct",
    "prev_complete_from",
)


class _Screened(_Strict):
    """Drops the screener's five when the window does not carry them (``makers`` None)."""

    @post_dump
    def _unscreened(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        if data.get("makers") is None:
            for name in SCREENER_FIELDS + PREV_FIELDS:
                data.pop(name, None)
        if data.get("prev_buys") is None:  # not kept (Settings.prev_metrics)
            for name in PREV_FIELDS:
                data.pop(name, None)
        return data


WindowDocument = _Screened.from_dict(_window_fields(), name="WindowDocument")

TokenDocument = _Strict.from_dict(
    {
        "token": _address(),
        "at": _instant(),
        "windows": fields.Dict(
            keys=fields.String(), values=fields.Nested(WindowDocument), required=True
        ),
    },
    name="TokenDocument",
)

RankDocument = _Screened.from_dict(
    {
        "rank": fields.Integer(required=True, strict=True, validate=validate.Range(min=1)),
        "token": _address(),
        "at": _instant(),
        "window": fields.String(required=True),
        "by": fields.String(required=True),
        **_window_fields(),
    },
    name="RankDocument",
)

_TOKEN = TokenDocument()
_WINDOW = WindowDocument()
_RANK = RankDocument()


def token_document(view: Any) -> dict[str, Any]:
    """One line of ``show --json``: ``{"token", "at", "windows": {label: metrics}}``."""
    return _TOKEN.dump(view)


def rank_document(rank: int, view: Any, window: str, by: str) -> dict[str, Any]:
    """One line of ``top --json``: the rank, the token, then its metrics in ``window``."""
    head = {"rank": rank, "token": view.token, "at": view.at, "window": window, "by": by}
    metrics = _WINDOW.dump(view.windows[window])
    metrics["start"] = metrics.pop("from")  # the attribute "from" is dumped from
    return _RANK.dump({**head, **metrics})


def token_json(view: Any) -> str:
    """The ``show --json`` document of ``view`` as one line of exact JSON (API, feed, CLI)."""
    return dumps(token_document(view))


def rank_json(row: Any, ranking: Any) -> str:
    """One ``top --json`` line of ``row`` in ``ranking`` (API and CLI alike)."""
    return dumps(rank_document(row.rank, row.view, ranking.window, ranking.by))
