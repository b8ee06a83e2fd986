"""Exact numbers in Lua: no drift over 10^6 add/expire cycles, exact zero when empty."""

from __future__ import annotations

from decimal import Decimal

import pytest
import redis

from tests.support.servers import RedisServer
from tradeagg.contract.documents import token_document
from tradeagg.contract.exactjson import dumps
from tradeagg.contract.keys import apply_keys, token_keys
from tradeagg.engine.apply import RESULT_FIELDS, ApplyStatus, Engine, RawResult
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows
from tradeagg.store import scripts

CYCLES = 1_000_000
WINDOW = 1_000
M, A = 2_147_483_647, 16_807  # Park-Miller: a*x < 2^53, exact in Lua's doubles

DRIFT_TEST = """
local x = 12345
local function rnd() x = (A * x) % M; return x end
local qs, t = {}, new_totals()
local out = {}
local N, W = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, N do
  local hi = (rnd() % 1000000) * 1000000 + rnd() % 1000000
  local lo = rnd() % 1000000000
  local e = {side = (i % 3 == 0) and 's' or 'b', qhi = hi, qlo = lo}
  qs[i] = e
  add(t, e, 1)
  if i > W then add(t, qs[i - W], -1); qs[i - W] = nil end
  if i % 100000 == 0 then
    out[#out + 1] = fmt_vol(t.bh, t.bl); out[#out + 1] = fmt_vol(t.sh, t.sl)
  end
end
for i = N - W + 1, N do add(t, qs[i], -1) end
out[#out + 1] = fmt_vol(t.bh, t.bl); out[#out + 1] = fmt_vol(t.sh, t.sl)
out[#out + 1] = fmt_int(t.b); out[#out + 1] = fmt_int(t.s)
return out
""".replace("A *", f"{A} *").replace("% M", f"% {M}")


def python_reference(n: int, w: int) -> list[str]:
    x = 12345

    def rnd() -> int:
        nonlocal x
        x = (A * x) % M
        return x

    qs: list[tuple[str, int]] = []
    buy = sell = 0
    out = []
    for i in range(1, n + 1):
        hi = (rnd() % 1_000_000) * 1_000_000 + rnd() % 1_000_000
        lo = rnd() % 1_000_000_000
        side = "s" if i % 3 == 0 else "b"
        nano = hi * 10**9 + lo
        qs.append((side, nano))
        if side == "b":
            buy += nano
        else:
            sell += nano
        if i > w:
            s, q = qs[i - w - 1]
            if s == "b":
                buy -= q
            else:
                sell -= q
        if i % 100_000 == 0:
            out += [f"{buy // 10**9}.{buy % 10**9:09d}", f"{sell // 10**9}.{sell % 10**9:09d}"]
    out += ["0.000000000", "0.000000000", "0", "0"]
    return out


@pytest.fixture(scope="module")
def patient_redis(tmp_path_factory: pytest.TempPathFactory):
    """A redis-server of this module's own that lets one long script run. On a loaded
    machine the million cycles can outlast the client's socket timeout (redis-py then
    retries the EVAL) and the server's 5 s busy-reply threshold (after which it answers
    the retry BUSY): here the threshold is 10 minutes and the client waits as long."""
    server = RedisServer(
        tmp_path_factory.mktemp("patient"), extra=["--busy-reply-threshold", "600000"]
    )
    server.start()
    client = server.client(socket_timeout=600)
    yield client
    client.close()
    server.stop()


def test_a_million_add_expire_cycles_do_not_drift(patient_redis: redis.Redis) -> None:
    """Volumes up to ~10^15 quote units per window stay exact to the nano unit."""
    source = scripts.assemble("--@include lib/volume.lua\n" + DRIFT_TEST)
    got = [v.decode() for v in patient_redis.eval(source, 0, CYCLES, WINDOW)]
    assert got == python_reference(CYCLES, WINDOW)


def test_an_emptied_window_reads_exactly_zero(redis_client: redis.Redis) -> None:
    s = Settings(windows=parse_windows("1s,10s"), clock="wall")
    engine = Engine(redis_client, s)
    token = "So11111111111111111111111111111111111111112"
    quotes = ["0.1", "0.2", "0.3", "0.000000001", "999999999.999999999", "0.7"]
    records = [
        f"{token} {1000 + i} 0 {'b' if i % 2 else 's'} {_nano(q)} 1.5 t{i}"
        for i, q in enumerate(quotes)
    ]
    engine.apply_records(records, now=1010)
    agg = {
        k.decode(): v.decode()
        for k, v in redis_client.hgetall(f"token:{{{token}}}:aggregates").items()
    }
    assert agg["10s:volume"] == "1000000001.300000000"
    engine.advance([token], now=20_000)
    agg = {
        k.decode(): v.decode()
        for k, v in redis_client.hgetall(f"token:{{{token}}}:aggregates").items()
    }
    for label in ("1s", "10s"):
        assert agg[f"{label}:buy_volume"] == agg[f"{label}:sell_volume"] == "0.000000000"
        assert agg[f"{label}:volume"] == "0.000000000"
        assert agg[f"{label}:buys"] == agg[f"{label}:sells"] == "0"
        assert f"{label}:open" not in agg and f"{label}:price_change_pct" not in agg
    view = Reader(redis_client, s, engine.scripts).read(token, 20_000)
    assert view.windows["10s"].volume == 0 and view.windows["10s"].volume.is_zero()
    assert '"volume": 0,' in dumps(token_document(view))


def _nano(q: str) -> int:
    whole, _, frac = q.partition(".")
    return int(whole) * 10**9 + int((frac + "0" * 9)[:9])


TOKEN = "So11111111111111111111111111111111111111112"
TWO_WINDOWS = "1s:1000,1m:60000"
TWO_TRADES = "1500 0 b 5000000000 2 a\n1200 1 s 1000000000 3 b"
ASSEMBLED = {"apply_trades", "read_window", "verify_token", "retire_windows"}  # assembled with their lib/ includes, as tradeagg loads them


def _script(client: redis.Redis, name: str):
    if name in ASSEMBLED:
        return client.register_script(scripts.source(name))
    return client.register_script((scripts.LUA_DIR / f"{name}.lua").read_text())


def _applied(client: redis.Redis):
    return _script(client, "apply_trades")(
        keys=apply_keys(TOKEN), args=[2000, "wall", TWO_WINDOWS, 1000, TWO_TRADES]
    )


def _call_apply_trades(client: redis.Redis) -> None:
    raw = _applied(client)  # a status first, then the fields in engine/apply.py's order
    assert len(raw) == RESULT_FIELDS
    got = RawResult(*raw)._asdict()
    touched, scanned = got.pop("touched"), got.pop("scanned")
    assert got == {
        "status": ApplyStatus.OK,
        "applied": 2,
        "duplicates": 0,
        "late": 0,
        "over_capacity": 0,
        "rebuilt": -1,
        "unparsable": 0,
        "last_update": b"2000",
        "detail": b"",
    }
    assert touched >= 2 and scanned >= 0  # work figures: the two entries were written
    assert client.llen(f"token:{{{TOKEN}}}:trades") == 2


def _call_read_window(client: redis.Redis) -> None:
    _applied(client)
    [got] = _script(client, "read_window")(keys=token_keys(TOKEN), args=[TWO_WINDOWS, 2100])
    per_window = [b"1", b"1", b"5.000000000", b"1.000000000", b"6.000000000", b"3", b"2"]
    assert got[:4] == [b"ok", b"2100", b"2000", None]
    # per window: its label, complete_from (nil: complete), then the metrics
    assert got[4:13] == [b"1s", None, *per_window] and got[14:23] == [b"1m", None, *per_window]
    assert float(got[13]) == float(got[23]) == pytest.approx(-100 / 3)


def _call_verify_token(client: redis.Redis) -> None:
    _applied(client)
    verify = _script(client, "verify_token")
    assert verify(keys=apply_keys(TOKEN), args=[TWO_WINDOWS, 1000, "check"])[:2] == [b"ok", b""]
    client.hset(f"token:{{{TOKEN}}}:aggregates", "1m:buys", 7)
    outcome, reason, _touched = verify(keys=apply_keys(TOKEN), args=[TWO_WINDOWS, 1000, "check"])
    assert outcome == b"corrupt" and reason != b""


def _call_retire_windows(client: redis.Redis) -> None:
    _applied(client)
    retire = _script(client, "retire_windows")
    # 1s leaves; the list keeps 1m's trades (both), nothing to trim
    assert retire(keys=apply_keys(TOKEN), args=["1s", 100]) == [1, 0, 0, 0]
    assert client.hkeys(f"token:{{{TOKEN}}}:indices") == [b"1m"]
    assert retire(keys=apply_keys(TOKEN), args=["1m", 100]) == [0, 0, 0, 1]  # its only window


def _call_janitor_lock(client: redis.Redis) -> None:
    lock, key = _script(client, "janitor_lock"), "tradeagg:{janitor}:lock"
    assert lock(keys=[key], args=["me", 10_000]) == 1
    assert lock(keys=[key], args=["other", 10_000]) == 0
    assert 0 < client.pttl(key) <= 10_000
    assert lock(keys=[key], args=["me", 0]) == 1 and not client.exists(key)


def _call_trim_stream(client: redis.Redis) -> None:
    stream = "tradeagg:{s0}:stream"
    ids = [client.xadd(stream, {"v": "1", "t": ""}) for _ in range(3)]
    client.xgroup_create(stream, "workers", id=ids[1])  # the first two delivered, none pending
    assert _script(client, "trim_stream")(keys=[stream]) == [1, ids[1]]
    assert [e for e, _ in client.xrange(stream)] == ids[1:]


CALLS = {
    "apply_trades": _call_apply_trades,
    "read_window": _call_read_window,
    "verify_token": _call_verify_token,
    "retire_windows": _call_retire_windows,
    "janitor_lock": _call_janitor_lock,
    "trim_stream": _call_trim_stream,
}


def test_every_lua_file_has_a_call() -> None:
    """Every operation file (lua/*.lua; the library lua/lib/*.lua is assembled into them)
    is called below, and every library file is included by some operation."""
    files = {p.stem for p in scripts.LUA_DIR.glob("*.lua")}
    assert files == set(CALLS) == set(scripts.OPERATIONS)
    included = "\n".join(scripts.source(name) for name in ASSEMBLED)
    for lib in scripts.LUA_DIR.glob("lib/*.lua"):
        assert lib.read_text() in included, f"{lib.name} is included by no operation"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_script_runs_once_with_trivial_input(redis_client: redis.Redis, name: str) -> None:
    """Each script, loaded as tradeagg loads it, called once against a real Redis."""
    CALLS[name](redis_client)


def test_noscript_after_script_flush_recovers(redis_client: redis.Redis) -> None:
    s = Settings()
    engine = Engine(redis_client, s)
    token = "So11111111111111111111111111111111111111112"
    engine.apply_records([f"{token} 1000 0 b 5000000000 2 a"], now=2000)
    redis_client.script_flush()
    assert redis_client.script_exists(engine.scripts.apply_trades.sha) == [False]
    results = engine.apply_records([f"{token} 1500 0 s 1000000000 3 b"], now=2000)
    assert results[0].applied == 1
    view = Reader(redis_client, s, engine.scripts).read(token, 2000)
    assert (view.windows["1m"].buys, view.windows["1m"].sells) == (1, 1)
    assert view.windows["1m"].volume == Decimal(6)


def test_a_rebuild_without_trades_leaves_no_key_without_ttl(redis_client: redis.Redis) -> None:
    """Keys a rebuild recreates keep expiring with the token (nothing outlives it)."""
    s = Settings(windows=parse_windows("1m,1h"))
    engine = Engine(redis_client, s)
    token = "So11111111111111111111111111111111111111112"
    now = 1_700_000_000_000
    engine.apply_records(
        [f"{token} {now - 5_000 + i} 0 b 1000000000 2 t{i}" for i in range(5)], now=now
    )
    k = [f"token:{{{token}}}:{x}" for x in ("trades", "indices", "aggregates", "last_update")]
    redis_client.delete(k[1], k[2])  # indices and aggregates lost: the state must be rebuilt
    redis_client.rpush(k[0], "garbage")  # and the list has an unparsable element
    [r] = engine.advance([token], now=now + 1_000)
    assert r.rebuilt == 1 and "corrupt" in r.reason
    for key in k:
        assert 0 < redis_client.pttl(key) <= 3_600_000, key
    view = Reader(redis_client, s, engine.scripts).read(token, now + 1_000)
    assert view.windows["1m"].buys == 5 and view.windows["1m"].volume == Decimal(5)


def test_many_maximal_quotes_stay_exact(redis_client: redis.Redis) -> None:
    """10^9-unit trades (the largest valid quote) in one window: sums near 10^13 are exact,
    and what remains after they leave is exact too (nothing lingers from their magnitude)."""
    s = Settings(windows=parse_windows("10s"))
    engine = Engine(redis_client, s)
    token = "So11111111111111111111111111111111111111112"
    big = [f"{token} {1000 + i // 2} 0 b 1000000000000000000 2 big{i}" for i in range(9_000)]
    engine.apply_records(big + [f"{token} 6000 0 b 1 2 small"], now=6000)
    view = Reader(redis_client, s).read(token, 6000)
    assert view.windows["10s"].buy_volume == Decimal("9000000000000.000000001")
    view = Reader(redis_client, s).read(token, 15_999)
    assert (view.windows["10s"].buys, view.windows["10s"].volume) == (1, Decimal("1E-9"))
    bad = engine.apply_records([f"{token} 7000 0 b 1000000000000000001 2 over"], now=7000)
    assert bad[0].applied == 0 and "unparsable" in bad[0].reason
