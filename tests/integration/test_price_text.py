"""`show` and `top` print a price the same way; `show --json` keeps it exact (issue 12)."""

from __future__ import annotations

import json

from tests.integration.test_reclaim import settings
from tests.support.cli import clean_env, cli
from tradeagg.clock import now_ms
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine

TOKEN = "So11111111111111111111111111111111111111112"
PRICE = "0.000012345678"  # a meme-coin price, far below 1


def test_show_and_top_print_a_price_alike(redis_server, redis_client) -> None:
    s = settings()
    at = now_ms()
    trades = [
        Trade(id=f"p{i}", token=TOKEN, side="buy", quote_nano=10**9, price=PRICE, ts=at - i, seq=0)
        for i in range(3)
    ]
    Engine(redis_client, s).apply_records([t.record for t in trades])
    at = now_ms()  # one instant for both readers, after the apply
    env = clean_env(REDIS_URL=redis_server.url, TRADEAGG_SHARDS="2", TRADEAGG_WINDOWS="5s,1m")
    show = cli(env, "show", TOKEN, "--at", str(at))
    top = cli(env, "top", "--window", "1m", "--at", str(at))
    assert show.returncode == 0 and top.returncode == 0, show.stderr + top.stderr
    assert "1.23e-5" in show.stdout and "1.23e-5" in top.stdout, show.stdout + top.stdout
    assert PRICE not in show.stdout
    exact = cli(env, "show", TOKEN, "--at", str(at), "--json").stdout
    assert json.loads(exact)["windows"]["1m"]["close"] == float(PRICE)
    assert f'"close": {PRICE}' in exact  # the exact decimal text, not a float's
