"""Lua and Python agree on the order of a window's metrics in read_window.lua's answer."""

from __future__ import annotations

import re
from pathlib import Path

from tradeagg.engine.read import LUA_METRICS, PER_WINDOW, WINDOW_METRICS

WINDOWS_LUA = Path(__file__).resolve().parents[2] / "lua" / "lib" / "windows.lua"


def test_window_metrics_are_the_lua_metrics_in_order():
    body = re.search(r"local METRICS = \{(.*?)\}", WINDOWS_LUA.read_text(), re.S)
    assert body, "lua/lib/windows.lua no longer declares METRICS"
    lua = tuple(re.findall(r"'([a-z_]+)'", body.group(1)))
    assert lua == LUA_METRICS == WINDOW_METRICS[: len(lua)]
    assert PER_WINDOW == 2 + len(lua)  # the label, complete_from, then the metrics


def test_the_tests_compare_every_metric_the_engine_reads():
    from tests.support.checks import METRICS

    assert METRICS == WINDOW_METRICS
