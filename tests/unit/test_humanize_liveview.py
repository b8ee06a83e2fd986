"""Readable numbers and the demo's screen, without any server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradeagg.commands import humanize
from tradeagg.devtools import liveview
from tradeagg.engine.rank import Ranking, rank
from tradeagg.engine.read import TokenView, WindowView


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0"), "0"),
        (Decimal("999.4"), "999"),
        (Decimal("999.6"), "1.00k"),
        (Decimal("12345.678"), "12.3k"),
        (Decimal("1234567"), "1.23M"),
        (Decimal("4.2e9"), "4.20B"),
        (Decimal("0.00123456"), "0.00123"),
        (Decimal("1.234e-9"), "1.23e-9"),
        (Decimal("-2500"), "-2.50k"),
        (7, "7"),
        (None, "-"),
    ],
)
def test_number(value, text):
    assert humanize.number(value) == text


def test_count_percent_address_rate():
    assert humanize.count(9999) == "9999" and humanize.count(12_345) == "12.3k"
    assert humanize.percent(12.3456) == "+12.35%" and humanize.percent(-0.5) == "-0.50%"
    assert humanize.percent(None) == "-"
    assert humanize.address("So11111111111111111111111111111111111111112", 13) == "So111111…1112"
    assert humanize.address("short", 13) == "short"
    assert humanize.rate(1234.5) == "1.23k/s"


def _view(token: str, volume: str, buys: int) -> TokenView:
    w = WindowView(
        buys=buys,
        sells=1,
        buy_volume=Decimal(volume),
        volume=Decimal(volume),
        open=Decimal("1"),
        close=Decimal("1.5"),
        price_change_pct=50.0,
    )
    return TokenView(token, 1_700_000_000_000, 1_700_000_000_000, {"1m": w, "5m": w, "1h": w})


def _snapshot(rows: int) -> liveview.Snapshot:
    views = [_view(f"Token{i:02d}" + "x" * 30, str(1000 - i), i + 1) for i in range(rows)]
    ranked = rank(views, "5m", "volume", None)
    ranking = Ranking(1_700_000_000_000, "5m", "volume", len(views), ranked, views)
    return liveview.Snapshot(
        elapsed_s=12.0,
        fed=12_345,
        fed_rate=1000.0,
        applied_rate=990.0,
        in_flight=7,
        backlog=1,
        active=rows,
        applied=12_000,
        read_ms=42.0,
        ranking=ranking,
        columns=("1m", "5m", "1h"),
    )


def test_screen_fits_the_terminal_and_ranks():
    lines = liveview.screen(_snapshot(40), "tradeagg demo", width=80, height=20, color=False)
    assert len(lines) == 19 and all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("fed 12.3k trades (1.00k/s)  applied 990/s  in flight 7")
    header = lines[4].split()
    assert header[:3] == ["#", "token", "1m"] and "1h" not in header  # dropped to fit 80
    assert lines[5].split()[:2] == ["1", "Token00x…xxxx"]
    wide = liveview.screen(_snapshot(3), "t", width=200, height=50, color=False)
    assert "1h" in wide[4].split() and len(wide) == 8


def test_color_marks_changes_not_tokens():
    lines = liveview.table(_snapshot(1), width=200, color=True)
    row = lines[1]
    assert liveview.GREEN + " +50.00%" in row or liveview.GREEN + "+50.00%" in row
    assert liveview.RED not in row and "\x1b" not in row.split()[1]


def test_summary_and_empty():
    assert "fed=12345 " in liveview.summary(_snapshot(2))
    assert "top=Token00x…xxxx 5m_volume=1.00k" in liveview.summary(_snapshot(2))
    empty = liveview.screen(_snapshot(0), "t", width=100, height=30, color=False)
    assert empty[-1].startswith("waiting for the first trades")
