"""The output documents: the exact-JSON writer, the marshmallow declarations, and the real
``show --json`` / ``top --json`` output checked against them."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from marshmallow import ValidationError

from tradeagg.cli import main
from tradeagg.clock import now_ms
from tradeagg.contract.documents import RankDocument, TokenDocument, token_document
from tradeagg.contract.exactjson import dumps, number
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import TokenView, WindowView
from tradeagg.settings import Settings, parse_windows

TOKEN = "So11111111111111111111111111111111111111112"
OTHER = "0x" + "ab" * 20


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1.500000000"), "1.5"),
        (Decimal("0E-9"), "0"),
        (Decimal("1E+3"), "1000"),
        (Decimal("999999999999.999999999"), "999999999999.999999999"),  # a float would round
        (Decimal("0.000000001"), "0.000000001"),
        (Decimal("-2.50"), "-2.5"),
    ],
)
def test_decimals_are_written_exactly(value, text):
    assert number(value) == text
    assert dumps({"v": value}) == '{"v": ' + text + "}"


def test_other_values_as_json_writes_them():
    doc = {"a": [1, True, None, 'x"y', 0.25], "b": {"c": Decimal("3.0")}, "é": "ü"}
    assert dumps(doc) == json.dumps({**doc, "b": {"c": 3}})
    assert json.loads(dumps(doc), parse_float=Decimal)["b"]["c"] == 3
    for bad in (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")):
        with pytest.raises(ValueError):
            dumps([bad])
    assert dumps({"p99_ms": float("nan"), "max": float("inf")}) == '{"p99_ms": null, "max": null}'
    with pytest.raises(TypeError):
        dumps({"s": {1, 2}})


def _window(buys: int, volume: str) -> WindowView:
    v = Decimal(volume)
    return WindowView(buys, 0, v, Decimal(0), v, Decimal("1.5"), Decimal("1.5"), 0.0)


def test_a_token_document_has_the_contract_shape_and_order():
    partial = WindowView(complete_from=4_600_000)
    view = TokenView(TOKEN, 1_000, 900, {"1m": _window(2, "0.30"), "5m": partial})
    line = dumps(token_document(view))
    assert line == (
        '{"token": "' + TOKEN + '", "at": 1000, "windows": {"1m": {"kind": "exact", '
        '"from": 0, "buys": 2, "sells": 0, '
        '"buy_volume": 0.3, "sell_volume": 0, "volume": 0.3, "open": 1.5, "close": 1.5, '
        '"price_change_pct": 0.0, "partial": false, "complete_from": null}, "5m": {"kind": '
        '"exact", "from": 0, "buys": 0, "sells": 0, "buy_volume": 0, "sell_volume": 0, "volume": 0, "open": null, '
        '"close": null, "price_change_pct": null, "partial": true, "complete_from": 4600000}}}'
    )
    TokenDocument().load(json.loads(line, parse_float=Decimal))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("at"),
        lambda d: d.update(extra=1),
        lambda d: d.update(token="not an address"),
        lambda d: d["windows"]["1m"].update(buys=-1),
        lambda d: d["windows"]["1m"].update(buys=1.5),
        lambda d: d["windows"]["1m"].pop("volume"),
        lambda d: d["windows"]["1m"].update(volume=None),
    ],
)
def test_a_broken_document_is_refused(change):
    view = TokenView(TOKEN, 1_000, 900, {"1m": _window(2, "0.30")})
    doc = json.loads(dumps(token_document(view)), parse_float=Decimal)
    change(doc)
    with pytest.raises(ValidationError):
        TokenDocument().load(doc)


def test_real_show_and_top_output_validate(redis_server, redis_client, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("TRADEAGG_WINDOWS", "1m,5m")
    s = Settings(redis_url=redis_server.url, windows=parse_windows("1m,5m"))
    now = now_ms()
    records = [
        f"{TOKEN} {now - 2_000 + i} 0 {'bs'[i % 2]} 1{i}00000001 0.00{i + 1} s{i}" for i in range(5)
    ]
    records.append(f"{OTHER} {now - 90_000} 0 b 7 12345.678901234 o1")
    Engine(redis_client, s).apply_records(records, now=now)
    at = str(now + 1)

    assert main(["show", "--json", "--at", at, TOKEN, OTHER]) == 0
    lines = capsys.readouterr().out.splitlines()
    docs = [TokenDocument().load(json.loads(line, parse_float=Decimal)) for line in lines]
    assert [d["token"] for d in docs] == [TOKEN, OTHER]
    assert docs[0]["windows"]["1m"]["buys"] == 3 and docs[1]["windows"]["1m"]["buys"] == 0
    assert docs[1]["windows"]["5m"]["volume"] == Decimal("0.000000007")

    assert main(["top", "--json", "--window", "5m", "--at", at]) == 0
    rows = [json.loads(line, parse_float=Decimal) for line in capsys.readouterr().out.splitlines()]
    assert [RankDocument().load(r)["token"] for r in rows] == [TOKEN, OTHER]
    assert list(rows[0])[:8] == ["rank", "token", "at", "window", "by", "kind", "from", "buys"]


def test_the_show_table_marks_a_partial_window_and_says_from_when():
    from tradeagg.commands.show import table

    view = TokenView(
        TOKEN, 1_000, 900, {"1m": _window(2, "0.30"), "4h": WindowView(complete_from=7_200_000)}
    )
    out = table(view)
    rows = [line.split()[0] for line in out.splitlines()[2:4]]
    assert rows == ["1m", "4h*"]
    assert out.splitlines()[-1].startswith("* 4h is partial") and "exact from 7200000" in out
