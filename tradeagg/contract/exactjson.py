"""The one JSON writer of tradeagg's output: decimals printed exactly, never through float.

Volumes and prices are ``Decimal`` values that a float would round (a 1e-9
resolution over 1e12 units needs 21 digits). ``json.dumps`` cannot print a
Decimal as a number, so every ``--json`` output goes through ``dumps``:
a Decimal becomes its plain digits (``12.5``, no exponent, no trailing zeros);
a float (a measured rate, a percentage) its shortest repr, as ``json`` would,
and ``null`` when it is NaN or infinite (a measurement without a value: JSON
has no NaN);
strings, ints, bools, None, lists and mappings as ``json`` would, with the
same ``", "`` and ``": "`` separators.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def number(d: Decimal) -> str:
    """An exact decimal as plain text (JSON number text too), without trailing zeros."""
    if not d.is_finite():
        raise ValueError(f"{d} is not a finite number")
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def dumps(value: Any) -> str:
    """``value`` as one line of JSON; Decimals exact (ValueError for a NaN or infinite one)."""
    if value is None or isinstance(value, bool | str):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, float):
        return json.dumps(value) if math.isfinite(value) else "null"
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))}: {dumps(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    raise TypeError(f"{type(value).__name__} is not a JSON value")
