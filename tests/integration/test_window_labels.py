"""One rule for window labels: tradeagg/settings.py and lua/lib/windows.lua agree.

A token carries the windows of every release that wrote it; the scripts read a
stored label's length from the label itself (``label_ms``), so it must be the
length the settings give the same label, and refuse what the settings refuse.
"""

from __future__ import annotations

import pytest

from tradeagg.settings import parse_windows
from tradeagg.store.scripts import assemble

LABELS = [
    "1ms", "250ms", "1s", "30s", "1m", "5m", "15m", "60m", "1h", "4h", "24h", "1d", "7d",
    "9999999ms", "9999999d", "1000000s",
    # refused by both
    "0s", "05m", "10000000s", "5M", "5", "m", "1w", "1.5h", "-1m", "ms", "5mm", "5 m", "1hh",
    "٣m", "5m:", "",
]  # fmt: skip


def python_ms(label: str) -> int | None:
    try:
        [w] = parse_windows(label)
    except ValueError:
        return None
    return w.ms


@pytest.mark.parametrize("label", LABELS)
def test_lua_and_python_read_a_label_alike(redis_client, label) -> None:
    lua = "--@include lib/windows.lua\nreturn label_ms(ARGV[1]) or -1"
    got = redis_client.eval(assemble(lua), 0, label)
    want = python_ms(label)
    assert got == (-1 if want is None else want), label
