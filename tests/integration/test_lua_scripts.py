"""The Lua scripts: each assembles from lua/lib and loads into a real Redis;
Lua and Python agree on the result layout; failures come back typed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from tradeagg.contract.keys import TokenKeys, apply_keys
from tradeagg.engine.apply import RESULT_FIELDS, ApplyStatus, Engine, RawResult
from tradeagg.errors import CorruptTokenError
from tradeagg.settings import Settings, parse_windows
from tradeagg.store import scripts

OPERATION_FILES = sorted(p.stem for p in scripts.LUA_DIR.glob("*.lua"))
LIB_FILES = sorted(p.name for p in (scripts.LUA_DIR / "lib").glob("*.lua"))
TOKEN = "So11111111111111111111111111111111111111112"


def test_every_operation_file_is_registered() -> None:
    assert sorted(scripts.OPERATIONS) == OPERATION_FILES


@pytest.mark.parametrize("name", OPERATION_FILES)
def test_every_operation_assembles_and_loads(redis_client: redis.Redis, name: str) -> None:
    source = scripts.source(name)
    sha = redis_client.script_load(source)
    assert redis_client.script_exists(sha) == [True]
    for lib in scripts.INCLUDE.findall(source):  # each include's text is in the source
        assert (scripts.LUA_DIR / lib).read_text() in source, lib


@pytest.mark.parametrize("name", LIB_FILES)
def test_every_library_file_loads_alone(redis_client: redis.Redis, name: str) -> None:
    """Each lib file names what it needs: assembled alone, it compiles."""
    sha = redis_client.script_load(scripts.assemble(f"--@include lib/{name}\nreturn 1"))
    assert redis_client.script_exists(sha) == [True]


def test_each_library_file_is_included_once() -> None:
    source = scripts.source("apply_trades")
    for name in LIB_FILES:
        first_line = (scripts.LUA_DIR / "lib" / name).read_text().splitlines()[0]
        assert source.count(first_line) <= 1, name


def test_a_missing_include_is_a_clear_error() -> None:
    with pytest.raises(FileNotFoundError, match="lib/nothing.lua"):
        scripts.assemble("--@include lib/nothing.lua\nreturn 1")


@pytest.mark.parametrize("name", OPERATION_FILES)
def test_every_operation_has_a_header_and_names_no_key(name: str) -> None:
    """Purpose, KEYS, ARGV (if any) and return stated; keys only from KEYS (Cluster-safe)."""
    text = (scripts.LUA_DIR / f"{name}.lua").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
    assert header.startswith(f"-- {name}.lua: ")
    assert "KEYS" in header and re.search(r"Returns?\b", header), name
    if "ARGV[" in text.replace(header, ""):
        assert "ARGV[" in header, name
    for path in [scripts.LUA_DIR / f"{name}.lua", *(scripts.LUA_DIR / "lib").glob("*.lua")]:
        code = "\n".join(ln for ln in path.read_text().splitlines() if not ln.startswith("--"))
        assert not re.search(r"['\"](token|tradeagg):", code), path.name


def _lua_constants(path: Path) -> tuple[dict[str, int], list[str]]:
    text = path.read_text()
    statuses = {
        name: int(value)
        for name, value in re.findall(r"^local (\w+) = (\d+)\s+--", text, re.MULTILINE)
    }
    fields = re.search(r"local R = \{(.*?)\}", text, re.DOTALL)
    assert fields is not None
    order = sorted(re.findall(r"(\w+) = (\d+)", fields.group(1)), key=lambda kv: int(kv[1]))
    assert [int(i) for _, i in order] == list(range(1, len(order) + 1))
    return statuses, [name for name, _ in order]


def test_lua_and_python_agree_on_statuses_and_fields() -> None:
    statuses, fields = _lua_constants(scripts.LUA_DIR / "lib" / "status.lua")
    assert statuses == {s.name: s.value for s in ApplyStatus}
    assert fields == list(RawResult._fields)
    assert f"local R_FIELDS = {RESULT_FIELDS}" in (scripts.LUA_DIR / "lib" / "status.lua").read_text()


def test_a_reply_has_the_fields_in_order(redis_client: redis.Redis) -> None:
    engine = Engine(redis_client, Settings(windows=parse_windows("10s,1m")))
    keys = apply_keys(TOKEN)
    entries = "1000 0 b 2000000000 1.5 a\n1001 0 s 1000000000 2 b\nnot an entry"
    args = [1500, "at", "10s:10000,1m:60000", 100, entries]
    raw = engine.scripts.apply_trades(keys=keys, args=args)
    assert len(raw) == RESULT_FIELDS
    got = RawResult(*raw)
    assert (got.status, got.applied, got.duplicates, got.late, got.unparsable) == (0, 2, 0, 0, 1)
    # touched: the 2 pushed; the windows' walks take them from memory (lib/slide.lua)
    assert (got.rebuilt, int(got.last_update), got.touched, got.scanned) == (-1, 1500, 2, 0)
    assert got.detail == b"unparsable entries: 1"


def test_damage_met_mid_apply_is_a_corrupt_token_error(redis_client: redis.Redis) -> None:
    """An unparsable element inside a window passes the cheap load checks and is met
    while the window slides: CORRUPT, raised as CorruptTokenError."""
    s = Settings(windows=parse_windows("10s,1m"))
    engine = Engine(redis_client, s)
    records = [f"{TOKEN} {1000 + i * 100} 0 b 1000000000 2 t{i}" for i in range(20)]
    [ok] = engine.apply_records(records, now=3000)
    assert ok.status is ApplyStatus.OK and ok.raise_for_status() is ok
    redis_client.lset(TokenKeys(TOKEN).trades, 1, "garbage")
    [r] = engine.advance([TOKEN], now=12_000)  # the 10s window's start walks over index 1
    assert r.status is ApplyStatus.CORRUPT and r.failed and r.corrupt
    assert isinstance(r.error(), CorruptTokenError)
    with pytest.raises(CorruptTokenError, match="unparsable list element at 1"):
        r.raise_for_status()


def test_a_window_names_every_owned_field(redis_client: redis.Redis) -> None:
    """windows_of builds each window's field names in one table constructor (lib/windows.lua):
    it names exactly the fields of OWNED, "<label>:<metric>", and nothing else."""
    body = """
local ws = parse_windows('30s:30000,4h:14400000|1d:86400000;60000')
local out = {}
for _, w in ipairs({ws[1], ws[2], ws.long[1]}) do
  local keys = 0
  for _ in pairs(w) do keys = keys + 1 end
  if keys ~= #OWNED + 2 then out[#out + 1] = w.label .. ' has ' .. keys .. ' keys' end
  for _, m in ipairs(OWNED) do
    if w[m] ~= w.label .. ':' .. m then out[#out + 1] = w.label .. ' ' .. m end
  end
end
return out"""
    assert redis_client.eval(scripts.assemble(f"--@include lib/windows.lua\n{body}"), 0) == []
