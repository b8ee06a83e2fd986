"""`tradeagg serve` over real HTTP on loopback, against a real redis-server (CONTRACT §7)."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.bridge_procs import wait_for
from tests.support.serve_procs import ServeProc, SseClient
from tradeagg.contract import keys
from tradeagg.contract.documents import rank_json, token_json
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import Engine, now_ms
from tradeagg.engine.rank import Ranker
from tradeagg.engine.read import Reader
from tradeagg.observe.metrics import NullMetrics
from tradeagg.runtime.feed import ChangeFeed
from tradeagg.settings import Settings

GOOD = "So11111111111111111111111111111111111111112"


def exact(text: str | bytes) -> object:
    return json.loads(text, parse_float=Decimal)


@pytest.fixture
def world(redis_server, redis_client, tmp_path: Path):
    """A serve process, settings like its own, and 12 tokens with trades."""
    s = Settings.from_env({"REDIS_URL": redis_server.url, "TRADEAGG_SHARDS": "2"})
    now = now_ms()
    trades = SyntheticFeed(tokens=12, seed=7).trades(600, now - 50_000, rate=12)
    # none ahead of now: such a trade would enter the windows later, by itself, and a
    # count read before it would not be the count read after it plus the trades applied
    trades = [t for t in trades if t.ts <= now]
    Engine(redis_client, s).apply_records([t.record for t in trades])
    server = ServeProc(redis_server.url, tmp_path / "serve.log")
    try:
        yield server, s, sorted({t.token for t in trades})
    finally:
        assert server.stop() == 0, server.text()[-3000:]
    assert "Traceback" not in server.text()


def test_reads_equal_show_and_top_json(world, redis_client) -> None:
    server, s, tokens = world
    at = now_ms() + 1_000
    reader = Reader(redis_client, s)
    status, body = server.request("GET", f"/v1/tokens/{tokens[0]}?at={at}")[::2]
    assert status == 200
    assert exact(body) == exact(token_json(reader.read(tokens[0], at)))
    status, doc = server.get(f"/v1/tokens?ids={','.join(tokens[:5])},{tokens[0]}&at={at}")
    assert status == 200 and [d["token"] for d in doc] == tokens[:5]
    assert [exact(json.dumps(d)) for d in doc] == [
        exact(token_json(reader.read(t, at))) for t in tokens[:5]
    ]
    status, hdrs, body = server.request("GET", f"/v1/top?window=1m&by=buys&limit=4&at={at}")
    assert status == 200 and hdrs["content-type"] == "application/json"
    ranking = Ranker(redis_client, s).top("1m", "buys", 4, at)
    assert exact(body) == [exact(rank_json(r, ranking)) for r in ranking.rows]
    assert len(ranking.rows) == 4
    # a least volume: the same ranking without the tokens that traded less
    least = ranking.rows[1].window("1m").volume
    status, body = server.request(
        "GET", f"/v1/top?window=1m&by=buys&limit=4&at={at}&min_volume={least}"
    )[::2]
    kept = [
        r.token
        for r in Ranker(redis_client, s).top("1m", "buys", None, at).rows
        if r.window("1m").volume >= least
    ][:4]
    assert status == 200 and [d["token"] for d in exact(body)] == kept
    assert [d["rank"] for d in exact(body)] == list(range(1, len(kept) + 1))
    assert 0 < len(kept) and all(Decimal(d["volume"]) >= least for d in exact(body))
    status, doc = server.get(f"/v1/top?window=1m&min_volume={least}")  # the shared pass
    assert status == 200 and doc and all(Decimal(d["volume"]) >= least for d in doc)
    status, doc = server.get("/v1/top")  # defaults: 5m, volume, 50
    assert status == 200 and {d["window"] for d in doc} == {"5m"} and len(doc) == len(tokens)
    assert server.get("/v1/windows") == (
        200,
        {"windows": ["1m", "5m", "15m", "30m", "1h"], "default": "5m"},
    )
    status, doc = server.get(f"/v1/tokens/{GOOD}")  # unknown token: empty windows
    assert (
        status == 200 and doc["windows"]["5m"]["buys"] == 0 and doc["windows"]["5m"]["open"] is None
    )


def test_health_page_static_and_cors(world, redis_server) -> None:
    server, _s, _tokens = world
    assert server.get("/healthz")[0] == 200
    status, hdrs, body = server.request("GET", "/")
    assert status == 200 and hdrs["content-type"].startswith("text/html")
    assert (
        b"/static/screener.js" in body and "default-src 'self'" in hdrs["content-security-policy"]
    )
    for name in ("screener.js", "screener.css"):
        assert server.request("GET", f"/static/{name}")[0] == 200
    status, hdrs, _ = server.request("OPTIONS", "/v1/top", {"Origin": "https://app.example"})
    assert status == 204 and hdrs["access-control-allow-origin"] == "*"
    assert "Authorization" in hdrs["access-control-allow-headers"]
    assert server.request("GET", "/v1/top")[1]["access-control-allow-origin"] == "*"


def test_healthz_is_503_without_redis(redis_server, tmp_path: Path) -> None:
    server = ServeProc(redis_server.url, tmp_path / "serve.log")
    try:
        redis_server.kill()
        wait_for(lambda: server.get("/healthz")[0] == 503, 20, "healthz to say 503")
        status, doc = server.get("/v1/top")
        assert status == 503 and doc == {"error": "storage unavailable, try again"}
    finally:
        redis_server.start()
        assert server.stop() == 0
    assert "Traceback" not in server.text()


BAD = [
    ("/nope", 404, "no route"),
    ("/v1/tokens/", 400, "not a token address"),
    ("/v1/tokens/abc", 400, "not a token address"),
    ("/v1/tokens/So1111111111111111111111111111111111111111I", 400, "not a token address"),
    (f"/v1/tokens/{GOOD}/x", 404, "no route"),
    (f"/v1/tokens/{GOOD}?at=abc", 400, "epoch-millisecond"),
    (f"/v1/tokens/{GOOD}?at=-1", 400, "epoch-millisecond"),
    (f"/v1/tokens/{GOOD}?at=1.5", 400, "epoch-millisecond"),
    (f"/v1/tokens/{GOOD}?at=9007199254740992", 400, "epoch-millisecond"),
    (f"/v1/tokens/{GOOD}?at=%C2%B2", 400, "epoch-millisecond"),
    (f"/v1/tokens/{GOOD}?at=1&at=2", 400, "given 2 times"),
    (f"/v1/tokens/{GOOD}?foo=1", 400, "unknown parameter"),
    (f"/v1/tokens/{GOOD}?=x", 400, "unknown parameter"),
    (f"/v1/tokens/{GOOD}?at", 400, "malformed query"),
    ("/v1/tokens", 400, "ids"),
    ("/v1/tokens?ids=", 400, "at least one"),
    (f"/v1/tokens?ids={GOOD},nope", 400, "not a token address"),
    ("/v1/tokens?ids=" + ",".join([GOOD] * 101), 400, "at most 100"),
    ("/v1/top?window=9m", 400, "not configured"),
    ("/v1/top?window=", 400, "not configured"),
    ("/v1/top?by=makers_x", 400, "choose one of"),
    ("/v1/top?limit=0", 400, "1 to 500"),
    ("/v1/top?limit=501", 400, "1 to 500"),
    ("/v1/top?limit=ten", 400, "1 to 500"),
    ("/v1/top?at=1", 400, "earlier than last_update"),
    ("/v1/stream", 400, "either tokens"),
    (f"/v1/stream?tokens={GOOD}&top=5m", 400, "either tokens"),
    ("/v1/stream?tokens=x", 400, "not a token address"),
    ("/v1/stream?top=5m:volume:50:9:1", 400, "expected WINDOW"),
    ("/v1/stream?top=5m:volume:50:lots", 400, "not a quote amount"),
    ("/v1/top?min_volume=abc", 400, "not a quote amount"),
    ("/v1/top?min_volume=-1", 400, "not a quote amount"),
    ("/v1/top?min_volume=NaN", 400, "not a quote amount"),
    ("/v1/top?min_volume=1e999", 400, "not a quote amount"),
    ("/v1/stream?top=2m", 400, "not configured"),
    ("/v1/stream?top=5m:volume:101", 400, "1 to 100"),
    ("/v1/windows?x=1", 400, "unknown parameter"),
    ("/healthz?x=1", 400, "unknown parameter"),
    ("/static/../setup.py", 404, "no route"),
    ("/static/nope.js", 404, "no file"),
    ("/v1/top?" + "a" * 7000, 414, "longer than"),
]


def test_every_bad_input_is_a_4xx_json_error_and_never_reaches_redis(world, redis_server) -> None:
    server, _s, _tokens = world
    seen: list[str] = []
    monitor_client = redis_server.client()
    stop = threading.Event()

    def watch() -> None:
        with monitor_client.monitor() as m:
            for cmd in m.listen():
                seen.append(cmd["command"])
                if stop.is_set():
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.3)
    try:
        for path, status, words in BAD:
            if "earlier than" in words:
                continue  # valid input (it reads Redis), checked below
            got, hdrs, body = server.request("GET", path)
            assert got == status, (path, got, body)
            assert hdrs["content-type"] == "application/json", path
            doc = json.loads(body)
            assert set(doc) == {"error"} and words in doc["error"], (path, doc)
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            got, hdrs, body = server.request(method, "/v1/top")
            assert got == 405 and json.loads(body)["error"] and hdrs["allow"] == "GET, OPTIONS"
    finally:
        stop.set()
        server.get("/healthz")  # one more command so the watcher sees the stop
        watcher.join(10)
        monitor_client.close()
    reads = [c for c in seen if c.split()[0].upper() in ("EVALSHA", "EVAL", "ZRANGEBYSCORE")]
    assert reads == [], reads[:3]
    got, _, body = server.request("GET", "/v1/top?at=1")
    assert got == 400 and "earlier than last_update" in json.loads(body)["error"]


def test_bearer_token_guards_the_api_only(redis_server, redis_client, tmp_path: Path) -> None:
    secret = "s3cret-t0ken-value"
    server = ServeProc(redis_server.url, tmp_path / "serve.log", TRADEAGG_API_TOKEN=secret)
    try:
        for path in ("/v1/top", f"/v1/tokens/{GOOD}", f"/v1/stream?tokens={GOOD}", "/v1/windows"):
            status, hdrs, body = server.request("GET", path)
            assert status == 401 and hdrs["www-authenticate"] == "Bearer", path
            assert json.loads(body) == {"error": "missing or wrong bearer token"}
            wrong = server.request("GET", path, {"Authorization": "Bearer nope"})[0]
            assert wrong == 401
        assert server.get("/v1/top", {"Authorization": f"Bearer {secret}"})[0] == 200
        assert server.get("/healthz")[0] == 200
        assert server.request("GET", "/")[0] == 200
    finally:
        assert server.stop() == 0
    assert secret not in server.text()


def test_stream_pushes_updates_of_watched_tokens_and_rankings(world, redis_client) -> None:
    server, s, tokens = world
    watched = tokens[:3]
    client = SseClient(server.port, f"/v1/stream?tokens={','.join(watched)}")
    ranked = SseClient(server.port, "/v1/stream?top=1h:volume:5")
    try:
        first = client.events()
        while len(first) < 3:
            first += client.events()
        assert sorted(exact(d)["token"] for _, d in first) == sorted(watched)
        assert {name for name, _ in first} == {"update"}
        name, data = ranked.events()[0]
        assert name == "top" and len(json.loads(data)["tokens"]) == 5
        # a trade for a watched token, committed and announced: an update follows
        engine, cf = Engine(redis_client, s), ChangeFeed(redis_client, s, NullMetrics())
        before = exact(first[0][1])
        token = before["token"]
        trade = SyntheticFeed(tokens=1, seed=99).trades(1, now_ms() - 5_000, rate=1)[0]
        assert trade.ts < now_ms()
        results = engine.apply_records([f"{token} {trade.entry}"])
        assert [r.applied for r in results] == [1]
        cf.applied(results)
        cf.flush_once()
        deadline = time.monotonic() + 10
        while True:
            got = [exact(d) for n, d in client.events() if n == "update"]
            mine = [d for d in got if d["token"] == token]
            if mine:
                # 1h: no trade of the fixture (the last 50 s) leaves it meanwhile, as some
                # may leave 1m on a slow machine
                w, old = mine[-1]["windows"]["1h"], before["windows"]["1h"]
                assert w["buys"] + w["sells"] == old["buys"] + old["sells"] + 1
                break
            assert time.monotonic() < deadline
    finally:
        client.close()
        ranked.close()
    wait_for(lambda: server.get("/healthz")[1]["sse_clients"] == 0, 10, "clients to go")


def test_a_stream_ranking_with_a_least_volume_lists_only_tokens_that_traded_that_much(
    world, redis_client
) -> None:
    server, s, tokens = world
    ranker = Ranker(redis_client, s)
    volumes = sorted(r.window("1h").volume for r in ranker.top("1h", "volume", None).rows)
    least = volumes[len(volumes) // 2]
    ranked = SseClient(server.port, f"/v1/stream?top=1h:price_change_pct:50:{least}")
    try:
        name, data = ranked.events()[0]
    finally:
        ranked.close()
    doc = json.loads(data)
    assert name == "top" and doc["by"] == "price_change_pct"
    want = ranker.top("1h", "price_change_pct", 50, doc["at"], min_volume=least)
    assert doc["tokens"] == [r.token for r in want.rows]
    assert 0 < len(doc["tokens"]) < len(tokens)


def test_a_client_that_never_reads_does_not_grow_server_memory(world, redis_client) -> None:
    """One client never reads; another reads everything. Tens of MB of events later
    the server's RSS has not grown by more than a few MB: the silent client's mailbox
    keeps one event per token, the rest is skipped."""
    server, s, _tokens = world
    feed = SyntheticFeed(tokens=100, seed=8)
    trades = feed.trades(3_000, now_ms() - 30_000, rate=100)
    Engine(redis_client, s).apply_records([t.record for t in trades])
    watched = sorted({t.token for t in trades})[:100]
    path = f"/v1/stream?tokens={','.join(watched)}"
    silent = SseClient(server.port, path)
    reading = SseClient(server.port, path)
    stop = threading.Event()

    def announce() -> None:
        while not stop.is_set():
            pipe = redis_client.pipeline(transaction=False)
            for t in watched:
                shard = keys.shard_of(t, s.shards)
                pipe.xadd(keys.changes(shard), {"token": t, "at": 0, "last_update": 0}, maxlen=1000)
            pipe.execute()
            time.sleep(0.005)

    writer = threading.Thread(target=announce, daemon=True)
    writer.start()
    try:
        while reading.received < 3_000_000:
            reading.read_some()
            reading.buf = b""
        base = server.rss_kb()
        target = reading.received + 30_000_000
        while reading.received < target:
            reading.read_some()
            reading.buf = b""
        grown = server.rss_kb() - base
        assert grown < 8_000, f"server RSS grew by {grown} kB while 30 MB went out"
        assert server.get("/healthz")[0] == 200
    finally:
        stop.set()
        writer.join(10)
        silent.close()
        reading.close()
