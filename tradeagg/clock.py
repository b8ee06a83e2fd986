"""The one wall clock of tradeagg: epoch milliseconds, as trades, windows and stamps use them.

Everything that asks "what time is it" calls ``now_ms``, so a test or a tool
can reason about one clock, and classes that need another take a
``clock: Callable[[], int]`` argument defaulting to it.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """This machine's wall clock in epoch milliseconds."""
    return int(time.time() * 1000)
