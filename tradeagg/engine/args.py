"""Arguments of the read scripts, checked and encoded in one place.

``read_window.lua``, ``apply_trades.lua`` and ``verify_token.lua`` take the
configured windows as one ``label:ms,…`` string and an instant as epoch ms
(empty: the token's own clock). The checks raise ``BadQuery`` worded for any
caller; commands add their flags' names (see ``commands/wording.py``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from tradeagg.errors import BadQuery
from tradeagg.settings import Settings

MAX_AT = 2**53  # instants are exact in Lua's doubles below this
MAX_MIN_VOLUME = Decimal(10) ** 18  # far above any window's volume; keeps the text short


def windows_arg(settings: Settings) -> str:
    """The configured windows as the scripts take them: ``1m:60000,5m:300000,…``;
    with bucketed windows (CONTRACT §2c) ``<exact>|<long>;<bucket ms>``, and with the
    previous windows' metrics (``Settings.prev_metrics``) at least ``<exact>|;<bucket ms>``;
    with them turned off (``Settings.prev_dropped``) followed by ``;-`` (the scripts keep
    none and delete those an earlier setting kept) (``lua/lib/windows.lua``)."""
    exact = ",".join(f"{w.label}:{w.ms}" for w in settings.exact_windows)
    off = ";-" if settings.prev_dropped else ""  # previous windows off: the scripts drop them
    if not settings.long_windows and not settings.prev_metrics and not off:
        return exact
    # the previous windows (lua/lib/prev.lua) need r: "<exact>|;r"
    long = ",".join(f"{w.label}:{w.ms}" for w in settings.long_windows)
    return f"{exact}|{long};{settings.bucket_ms}{off}"


def at_arg(at: int | None) -> int | str:
    """An instant as the scripts take it; ``None`` (the token's own clock) is empty."""
    return "" if at is None else at


def check_at(at: int | None) -> int | None:
    """``at`` unchanged when it is an epoch-millisecond instant (or None); else BadQuery."""
    if at is not None and not 0 <= at < MAX_AT:
        raise BadQuery("at", at, "is not an epoch-millisecond instant")
    return at


def check_window(settings: Settings, label: str) -> str:
    """``label`` unchanged when it is a configured window; else BadQuery."""
    labels = [w.label for w in settings.windows]
    if label not in labels:
        raise BadQuery("window", label, f"is not configured (TRADEAGG_WINDOWS: {labels})")
    return label


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` unchanged when it is one of ``choices``; else BadQuery."""
    if value not in choices:
        raise BadQuery(name, value, f"is not one of {', '.join(choices)}")
    return value


def check_limit(limit: int | None) -> int | None:
    """``limit`` unchanged when None (no limit) or at least 1; else BadQuery."""
    if limit is not None and limit < 1:
        raise BadQuery("limit", limit, "must be at least 1")
    return limit


def parse_min_volume(raw: str) -> Decimal:
    """A minimum window volume in quote units (``0``, ``2.5``): finite, >= 0; else BadQuery."""
    text = raw.strip()
    try:
        value = Decimal(text) if len(text) <= 40 else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not 0 <= value <= MAX_MIN_VOLUME:
        raise BadQuery(
            "min_volume", raw[:40], f"is not a quote amount from 0 to {MAX_MIN_VOLUME:.0e}"
        )
    return value
