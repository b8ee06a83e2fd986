"""Issue 11: list entries in the compact form (ts, seq and quote in base 36, a
capital side letter) beside the decimal entries of earlier releases, which a
token keeps until they leave its windows: both forms are read, ordered, counted
and checked alike, so a token holding both is exact (brute-force reference)."""

from __future__ import annotations

import random

import redis

from tests.support.checks import assert_matches_reference
from tradeagg.contract import entry as codec
from tradeagg.contract.keys import TokenKeys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import ApplyStatus, Engine
from tradeagg.engine.integrity import Integrity
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows
from tradeagg.store import scripts

A = "So11111111111111111111111111111111111111112"
T0 = 1_700_000_000_000
WALLETS = [c * 40 for c in "ABCDEF"]
# quotes in nano units around the bounds of the Lua reader: 36^10 (the last
# 10-digit base-36 number), 2^53 (exact doubles) and 1e9 units (the maximum)
EDGES = [1, 35, 36, 36**10 - 1, 36**10, 36**10 + 1, 2**53 - 1, 2**53 + 1, 10**18 - 1, 10**18]


def decimal_entry(t: Trade) -> str:
    """The list entry as the previous release wrote it (decimal integers, lowercase side)."""
    side = ("b" if t.side == "buy" else "s") + codec.trader_digest(t.trader)
    return f"{t.ts} {t.seq} {side} {t.quote_nano} {t.price} {t.id}"


def decimal_record(t: Trade) -> str:
    return f"{t.token} {decimal_entry(t)} {codec.id_digest(t.id)}"


def feed(n: int, seed: int) -> list[Trade]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        quote = EDGES[i] if i < len(EDGES) else rng.randrange(1, 10**11)
        out.append(
            Trade(
                id=f"sig{rng.randrange(10**9)}:{i}",
                token=A,
                side=rng.choice(("buy", "sell")),
                quote_nano=quote,
                price=f"{rng.uniform(0.5, 9):.4f}",
                ts=T0 + rng.randrange(240_000),
                seq=rng.choice((0, 1, rng.randrange(2_000), 2**53 - 1 - rng.randrange(5))),
                trader=rng.choice(WALLETS),
            )
        )
    return out


def test_a_token_of_decimal_and_compact_entries_is_exact(redis_client: redis.Redis) -> None:
    s = Settings(windows=parse_windows("1m,3m,5m"))
    engine, reader = Engine(redis_client, s), Reader(redis_client, s)
    trades = sorted(feed(600, seed=5), key=lambda t: (t.ts, t.seq, t.id))
    old, new = trades[::2], trades[1::2]  # new ones land among the old
    [r] = engine.apply_records([decimal_record(t) for t in old], now=old[-1].ts)
    assert r.applied == len(old) and not r.failed
    # late compact trades among the decimal ones, ids seen as decimal entries, new ones
    late = [t for t in new if t.ts <= old[-1].ts]
    rng = random.Random(9)
    again = [
        Trade(t.id, A, "sell", 7, "3", t.ts + 1, trader=WALLETS[0]) for t in rng.sample(old, 20)
    ]
    [r] = engine.apply_records([t.record for t in [*again, *new]], now=new[-1].ts)
    assert r.status is ApplyStatus.OK and (r.applied, r.duplicates) == (len(new), len(again))
    assert late  # some landed among the decimal entries

    listed = [e.decode() for e in redis_client.lrange(TokenKeys(A).trades, 0, -1)]
    forms = [e.split(" ")[2][0] for e in listed]
    assert set(forms) == {"b", "s", "B", "S"}  # both forms kept side by side
    assert listed == sorted(listed, key=codec.sort_key)  # one (ts, seq, id) order
    kept = [t for t in trades if t.ts > new[-1].ts - 300_000]
    assert len(listed) == len(kept)
    for at in (new[-1].ts, new[-1].ts + 30_000, new[-1].ts + 170_000):
        assert_matches_reference(reader, kept, at, s.windows, [A])
    assert Integrity(redis_client, s).check([A]).corrupt == {}
    # a rebuild reads both forms too
    redis_client.delete(TokenKeys(A).indices)
    later = [Trade(f"n{i}", A, "buy", 10**18, "1", new[-1].ts + 200_000 + i) for i in range(3)]
    [r] = engine.apply_records([t.record for t in later], now=later[-1].ts)
    assert r.status is ApplyStatus.REBUILT and r.applied == 3
    assert_matches_reference(reader, [*kept, *later], later[-1].ts, s.windows, [A])


# parse as it was before the fast way (lib/entry.lua, PAT.at): the whole-line
# patterns only (PAT.whole); the reference every line must parse alike under
PATTERN_PARSE = r"""
local by_patterns = PAT.whole
local function text(x)
  if not x then return '-' end
  local ks = {}
  for k, v in pairs(x) do ks[#ks + 1] = k .. '=' .. tostring(v) end
  table.sort(ks)
  return table.concat(ks, '|')
end
local out = {}
for _, e in ipairs(ARGV) do
  -- one line: parse and the patterns; the lines of e, as news: PAT.news and
  -- the patterns line by line (each stored, with its id key)
  local want, bad = {}, 0
  for line in string.gmatch(e, '[^\n]+') do
    local x = by_patterns(line)
    if x then want[#want + 1] = stored(x) else bad = bad + 1 end
  end
  want = sort_unique(want)
  local got, got_bad = PAT.news(e)
  local a, b = {bad}, {got_bad}
  for _, x in ipairs(want) do a[#a + 1] = text(x) end
  for _, x in ipairs(got) do b[#b + 1] = text(x) end
  out[#out + 1] = text(by_patterns(e)); out[#out + 1] = text(parse(e))
  out[#out + 1] = table.concat(a, '\n'); out[#out + 1] = table.concat(b, '\n')
end
return out
"""


def _mutants(rng: random.Random, lines: list[str], n: int) -> list[str]:
    """Lines near valid ones: characters inserted, dropped or replaced (spaces,
    other whitespace, hex and non-hex, the side letters, newlines)."""
    chars = [" ", "  ", "\t", "\r", "\v", "\f", "\n", "\0", "a", "B", "S", "b", "0", "9", "f",
             "F", "z", "_", "-", ".", ":", "x", "g", "e5", "inf"]
    out = []
    for _ in range(n):
        line = rng.choice(lines)
        for _ in range(rng.randrange(0, 4)):
            i = rng.randrange(len(line) + 1)
            c = rng.choice(chars)
            op = rng.randrange(3)
            line = (line[:i] + c + line[i:] if op == 0 else line[:i] + line[i + 1 :] if op == 1
                    else line[:i] + c + line[i + 1 :])
        out.append(line)
    return out


def test_the_fast_parse_takes_what_the_patterns_take(redis_client: redis.Redis) -> None:
    """parse and PAT.news (lib/entry.lua) find price, id and digest by plain finds
    in a line without whitespace but spaces: every line, valid or damaged, parses
    to the same fields (or is refused) as by the whole-line patterns, alone and
    among others in one ARGV string."""
    trades = feed(40, seed=11)
    lines = [codec.record(t).split(" ", 1)[1] for t in trades]  # compact, with digest
    lines += [codec.list_entry(t) for t in trades[:10]]  # compact, without digest
    lines += [decimal_entry(t) for t in trades[:5]] + [decimal_record(t).split(" ", 1)[1]
                                                       for t in trades[5:10]]
    lines += ["zz 0 B 1 1 x", "zz 0 B 1 1 x ", "zz 0 B 1 1 x 0123456789abcdefABCD",
              "zz 0 Babcdefgh 1 1 x 0123456789abcdefABC", "zz 0 Sabcdefg 1 1 x", "zz 0 B 1 0 x"]
    lines += [f"zz 0 B {codec.base36(q)} 1 x" for q in (10**18 - 1, 10**18, 10**18 + 1, 36**11)]
    rng = random.Random(5)
    singles = lines + _mutants(rng, lines, 3_000)
    groups = ["\n".join(rng.sample(singles, rng.randrange(1, 5))) + rng.choice(["", "\n"])
              for _ in range(600)]
    source = scripts.assemble("--@include lib/entry.lua\n" + PATTERN_PARSE)
    args = singles + groups
    for i in range(0, len(args), 500):
        got = redis_client.eval(source, 0, *args[i : i + 500])
        for j in range(0, len(got), 4):
            line = args[i + j // 4]
            assert got[j] == got[j + 1], f"parse of {line!r}"
            assert got[j + 2] == got[j + 3], f"PAT.news of {line!r}"
