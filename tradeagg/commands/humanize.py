"""Numbers for people: ``12.3k``, ``4.56M``, ``+12.34%``, short token addresses.

Tables (``top``, the demo's live view) show these; ``--json`` output never
does, it prints exact numbers for scripts.
"""

from __future__ import annotations

from decimal import Decimal

_SUFFIXES = ((Decimal(10) ** 12, "T"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"))
_SUFFIXES += ((Decimal(1000), "k"),)


def number(value: Decimal | int | float | None) -> str:
    """Three significant digits with a k/M/B/T suffix; ``-`` for None.

    Small values keep three significant digits (``0.00123``) because meme-coin
    prices and volumes in SOL are often far below 1.
    """
    if value is None:
        return "-"
    d = Decimal(value) if not isinstance(value, Decimal) else value
    if d == 0:
        return "0"
    sign = "-" if d < 0 else ""
    d = abs(d)
    for size, suffix in _SUFFIXES:
        if d >= size * Decimal("0.9995"):
            return sign + _sig3(d / size) + suffix
    if isinstance(value, int):
        return sign + str(int(d))
    return sign + _sig3(d)


def _sig3(d: Decimal) -> str:
    """``d`` (> 0) rounded to three significant digits; exponent form below 1e-4."""
    r = Decimal(f"{d:.2e}")
    e = r.adjusted()
    if e < -4:
        mantissa, _, exp = f"{r:.2e}".partition("e")
        return f"{mantissa}e{int(exp)}"
    return f"{r:.{max(0, 2 - e)}f}"


def count(value: int) -> str:
    """A count: exact below 10,000, then ``12.3k``."""
    return str(value) if value < 10_000 else number(Decimal(value))


def percent(value: float | None) -> str:
    """A signed percentage with two decimals (``+12.34%``); ``-`` for None."""
    if value is None:
        return "-"
    if abs(value) >= 10_000:
        return ("+" if value > 0 else "-") + number(Decimal(abs(value)).quantize(1)) + "%"
    return f"{value:+.2f}%"


def address(token: str, width: int = 12) -> str:
    """``AbCdEfGh…wxyz``: enough of an address to tell tokens apart on screen."""
    if len(token) <= width:
        return token
    tail = 4
    return token[: width - tail - 1] + "…" + token[-tail:]


def rate(per_second: float) -> str:
    """A throughput such as ``1.23k/s``."""
    return number(Decimal(str(round(per_second, 3)))) + "/s"
