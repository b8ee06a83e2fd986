-- _window.lua: shared window arithmetic, prepended to every operation script
-- by tradeagg/scripts.py. It defines functions only and touches no key itself:
-- every key it reads or writes is one the operation passed in KEYS.
--
-- A new trade (ARGV): "<ts> <seq> <b|s> <quote_nano> <price> <id>"; stored in
-- token:{A}:trades with its id digest appended: "... <id> <digest>", the digest
-- being the first 20 hex digits of SHA-1(id), also kept in tradeagg:{A}:ids so
-- that a trade whose id was seen is a duplicate whatever its ts or seq.
-- Totals are exact: counts are integers; a volume is two integers, whole quote
-- units (hi) and nano units (lo, 0 <= lo < 1e9), each far below 2^53.

-- standard functions as locals: a local is a register, a global a table lookup
local smatch, ssub, sbyte, sfmt = string.match, string.sub, string.byte, string.format
local tonumber, tostring, ipairs, unpack = tonumber, tostring, ipairs, unpack

local NANO = 1000000000
local CHUNK = 128
local DIGEST = 20

local function digest(id) return ssub(redis.sha1hex(id), 1, DIGEST) end

local function parse(e)
  local ts, seq, side, q, price, id, dg =
    smatch(e, '^(%d+) (%d+) ([bs]) (%d+) (%S+) (%S+) (%x+)$')
  if ts then
    if #dg ~= DIGEST then return nil end
  else
    ts, seq, side, q, price, id = smatch(e, '^(%d+) (%d+) ([bs]) (%d+) (%S+) (%S+)$')
    if not ts then return nil end
  end
  local qhi, qlo
  if #q > 9 then
    qhi = tonumber(ssub(q, 1, -10)); qlo = tonumber(ssub(q, -9))
  else
    qhi = 0; qlo = tonumber(q)
  end
  local p = tonumber(price)
  -- a quote is at most 1e9 units (schema.py): sums of a list stay below 2^53
  if not p or p <= 0 or qhi > 1e9 or (qhi == 1e9 and qlo > 0) then return nil end
  return {ts = tonumber(ts), seq = tonumber(seq), side = side, qhi = qhi, qlo = qlo,
          price = price, id = id, dg = dg, raw = e}
end

-- a parsed new trade as it is stored: with its id digest
local function stamp(x)
  if not x.dg then x.dg = digest(x.id); x.raw = x.raw .. ' ' .. x.dg end
  return x
end

-- run a variadic command over `args` in chunks (Lua's unpack has a limit)
local function chunked(cmd, key, args, out)
  for i = 1, #args, 1000 do
    local part = {}
    for j = i, math.min(i + 999, #args) do part[#part + 1] = args[j] end
    local r = redis.call(cmd, key, unpack(part))
    if out then for _, v in ipairs(r) do out[#out + 1] = v end end
  end
  return out
end

-- byte order of two ids (Lua's < on strings follows the server's locale)
local function id_lt(a, b)
  if a == b then return false end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = sbyte(a, i), sbyte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- (ts, seq, id) order; returns -1, 0 or 1
local function cmp(a, b)
  if a.ts ~= b.ts then return a.ts < b.ts and -1 or 1 end
  if a.seq ~= b.seq then return a.seq < b.seq and -1 or 1 end
  if a.id == b.id then return 0 end
  return id_lt(a.id, b.id) and -1 or 1
end

local function fmt_int(x) return sfmt('%.0f', x) end

local function fmt_vol(hi, lo) return sfmt('%.0f.%09.0f', hi, lo) end

local function parse_vol(s)
  if not s then return nil end
  local hi, lo = smatch(s, '^(%d+)%.(%d%d%d%d%d%d%d%d%d)$')
  if not hi then return nil end
  return tonumber(hi), tonumber(lo)
end

-- windows: ARGV string "1m:60000,5m:300000,..." shortest first. Field names
-- are built once per call, not per token.
local function parse_windows(spec)
  local ws = {labels = {}, load = {}}
  for label, ms in string.gmatch(spec, '([^:,]+):(%d+)') do
    local f = label .. ':'
    ws[#ws + 1] = {label = label, ms = tonumber(ms), buys = f .. 'buys', sells = f .. 'sells',
                   bv = f .. 'buy_volume', sv = f .. 'sell_volume', v = f .. 'volume',
                   open = f .. 'open', close = f .. 'close', pct = f .. 'price_change_pct'}
    local w = ws[#ws]
    ws.labels[#ws.labels + 1] = label
    for _, x in ipairs({w.buys, w.sells, w.bv, w.sv, w.open, w.close}) do ws.load[#ws.load + 1] = x end
  end
  return ws
end

-- mutable per-token state
local function new_totals() return {b = 0, s = 0, bh = 0, bl = 0, sh = 0, sl = 0} end

-- add (sign 1) or remove (sign -1) one trade's count and quote
local function addq(t, side, qhi, qlo, sign)
  if side == 'b' then
    t.b = t.b + sign
    t.bh = t.bh + sign * qhi; t.bl = t.bl + sign * qlo
    if t.bl >= NANO then t.bl = t.bl - NANO; t.bh = t.bh + 1
    elseif t.bl < 0 then t.bl = t.bl + NANO; t.bh = t.bh - 1 end
  else
    t.s = t.s + sign
    t.sh = t.sh + sign * qhi; t.sl = t.sl + sign * qlo
    if t.sl >= NANO then t.sl = t.sl - NANO; t.sh = t.sh + 1
    elseif t.sl < 0 then t.sl = t.sl + NANO; t.sh = t.sh - 1 end
  end
end

local function add(t, e, sign) addq(t, e.side, e.qhi, e.qlo, sign) end

-- whole and nano units of a quote given in nano units (text)
local function split_q(q)
  if #q <= 15 then  -- below 2^53: exact in a double
    local n = tonumber(q)
    local hi = math.floor(n / NANO)
    local lo = n - hi * NANO
    if lo < 0 then hi = hi - 1; lo = lo + NANO elseif lo >= NANO then hi = hi + 1; lo = lo - NANO end
    return hi, lo
  end
  return tonumber(ssub(q, 1, -10)), tonumber(ssub(q, -9))
end

-- entries [from, to] (0-based, inclusive), parsed; error on a corrupt entry
local function range(key, from, to)
  local raw = redis.call('LRANGE', key, from, to)
  local out = {}
  for i = 1, #raw do
    local e = parse(raw[i])
    if not e then error('corrupt: unparsable list element at ' .. (from + i - 1)) end
    out[i] = e
  end
  return out
end

local function entry_at(key, idx)
  local raw = redis.call('LINDEX', key, idx)
  if not raw then error('corrupt: no list element at ' .. idx) end
  local e = parse(raw)
  if not e then error('corrupt: unparsable list element at ' .. idx) end
  return e
end

local function price_of_raw(raw)
  local p = smatch(raw, '^%d+ %d+ [bs] %d+ (%S+) ')
  if not p then error('corrupt: no price in list element') end
  return p
end

local function price_at(key, idx)
  local raw = redis.call('LINDEX', key, idx)
  local p = raw and smatch(raw, '^%d+ %d+ [bs] %d+ (%S+) ')
  if not p then error('corrupt: no price in list element at ' .. idx) end
  return p
end

-- what a state that was never written looks like: every field differs
-- (unknown: the hash may hold stale fields, so empty windows delete theirs)
local function blank_old(ws, unknown)
  local old = {}
  for i = 1, #ws do
    old[i] = {b = -1, s = -1, bh = -1, bl = -1, sh = -1, sl = -1, idx = -1, open = unknown}
  end
  return old
end

-- Load the stored state of a token. Returns nil when the token has no state
-- (new or expired); errors with 'corrupt: ...' when the state is inconsistent.
local function load_state(K, ws)
  local lu = redis.call('GET', K[4])
  local n = redis.call('LLEN', K[1])
  if not lu then
    if n > 0 then error('corrupt: trades without last_update') end
    return nil
  end
  local st = {at = tonumber(lu), n = n, idx = {}, tot = {}, old = {}, dirty = {}}
  if not st.at then error('corrupt: last_update is not a number') end
  if K[5] and redis.call('SCARD', K[5]) ~= n then
    error('corrupt: the id index does not match the list')
  end
  local idx = redis.call('HMGET', K[2], unpack(ws.labels))
  st.retired = redis.call('HLEN', K[2]) > #ws  -- windows no longer configured
  local agg = redis.call('HMGET', K[3], unpack(ws.load))
  -- end of the windows: entries with ts <= at (future trades may follow)
  local e = n
  if n > 0 then
    st.tail = entry_at(K[1], n - 1)
    if st.tail.ts > st.at then
      local pos = n - 2
      while pos >= 0 and entry_at(K[1], pos).ts > st.at do pos = pos - 1 end
      e = pos + 1
    end
  end
  st.e = e
  local prev = 0
  for i = #ws, 1, -1 do
    if idx[i] == false then error('windows changed: no index for ' .. ws[i].label) end
    local x = tonumber(idx[i])
    if not x or x < prev or x > e or x ~= math.floor(x) then
      error('corrupt: index of ' .. ws[i].label .. ' is ' .. tostring(idx[i]))
    end
    prev = x
    local t = new_totals()
    local a = 6 * (i - 1)
    t.b = tonumber(agg[a + 1]); t.s = tonumber(agg[a + 2])
    t.bh, t.bl = parse_vol(agg[a + 3]); t.sh, t.sl = parse_vol(agg[a + 4])
    if not (t.b and t.s and t.bh and t.sh) or t.b + t.s ~= e - x or t.b < 0 or t.s < 0
       or (x < e) ~= (agg[a + 5] ~= false) then
      error('corrupt: totals of ' .. ws[i].label .. ' do not match the list')
    end
    st.idx[i] = x; st.tot[i] = t
    st.old[i] = {b = t.b, s = t.s, bh = t.bh, bl = t.bl, sh = t.sh, sl = t.sl, idx = x,
                 open = agg[a + 5], close = agg[a + 6]}
    if agg[a + 6] then st.close = agg[a + 6] end
  end
  return st
end

-- The list's parseable elements in order, without repeats: what can be
-- trusted of a damaged token. With `repair`, keys of a wrong type are deleted
-- and a changed list is written back. Returns entries, elements dropped.
local function trusted_entries(K, repair)
  local typ = redis.call('TYPE', K[1])['ok']
  local raw = {}
  if typ == 'list' then raw = redis.call('LRANGE', K[1], 0, -1)
  elseif typ ~= 'none' and repair then redis.call('DEL', K[1]) end
  if repair then
    for i = 2, 4 do
      local t = redis.call('TYPE', K[i])['ok']
      local want = (i == 4) and 'string' or 'hash'
      if t ~= 'none' and t ~= want then redis.call('DEL', K[i]) end
    end
  end
  local es, dropped, changed = {}, 0, false
  for i = 1, #raw do
    local e = parse(raw[i])
    if e then
      if not e.dg then stamp(e); changed = true end
      es[#es + 1] = e
    else dropped = dropped + 1; changed = true end
  end
  for i = 2, #es do
    if cmp(es[i - 1], es[i]) >= 0 then changed = true; break end
  end
  if changed then
    table.sort(es, function(a, b) return cmp(a, b) < 0 end)
    local uniq = {}
    for i = 1, #es do
      if i == 1 or cmp(es[i - 1], es[i]) ~= 0 then uniq[#uniq + 1] = es[i] end
    end
    dropped = dropped + (#es - #uniq)
    es = uniq
  end
  if repair and K[5] then
    -- the id index again, from what is kept; a repeated id keeps its first trade
    redis.call('DEL', K[5])
    local seen, keep, dgs = {}, {}, {}
    for _, e in ipairs(es) do
      if seen[e.dg] then dropped = dropped + 1; changed = true
      else seen[e.dg] = true; keep[#keep + 1] = e; dgs[#dgs + 1] = e.dg end
    end
    es = keep
    if #dgs > 0 then chunked('SADD', K[5], dgs) end
  end
  if changed then
    if repair then
      redis.call('DEL', K[1])
      for i = 1, #es, 1000 do
        local part = {}
        for j = i, math.min(i + 999, #es) do part[#part + 1] = es[j].raw end
        redis.call('RPUSH', K[1], unpack(part))
      end
    end
  end
  return es, dropped
end

-- State of in-memory entries `es` (ordered) as of `at`, counted from scratch.
local function state_of(es, ws, at)
  local st = {at = at, n = #es, idx = {}, tot = {}, old = blank_old(ws, true), dirty = {}}
  st.tail = es[#es] -- insert() compares new trades with the last element
  local e = #es
  while e > 0 and es[e].ts > at do e = e - 1 end
  st.e = e
  for i, w in ipairs(ws) do
    local t, first = new_totals(), e
    for j = e, 1, -1 do
      if es[j].ts <= at - w.ms then break end
      add(t, es[j], 1); first = j - 1
    end
    st.idx[i] = first; st.tot[i] = t
  end
  return st
end

-- State rebuilt from the list alone (requirement 8.4): unparsable elements
-- dropped, order and uniqueness restored, the list rewritten if it changed.
-- Returns the state as of `at`, and the number of elements dropped.
local function rebuild(K, ws, at)
  local es, dropped = trusted_entries(K, true)
  return state_of(es, ws, at), dropped
end

-- Insert sorted, deduplicated new entries into the list, in order. Entries
-- already in the list are skipped. Returns the inserted entries.
local function insert(K, st, news)
  if #news == 0 then return {} end
  local n = st.n
  if n == 0 or cmp(st.tail, news[1]) < 0 then
    for i = 1, #news, 1000 do
      local part = {}
      for j = i, math.min(i + 999, #news) do part[#part + 1] = news[j].raw end
      redis.call('RPUSH', K[1], unpack(part))
    end
    st.n = n + #news
    st.mem, st.mem_from = news, n
    return news
  end
  -- late arrivals: take the list's tail back to the first new entry, merge
  local k = CHUNK
  local tail
  while true do
    local from = math.max(n - k, 0)
    tail = range(K[1], from, n - 1)
    if from == 0 or cmp(tail[1], news[1]) < 0 then break end
    k = k * 4
  end
  local p = 1
  while p <= #tail and cmp(tail[p], news[1]) < 0 do p = p + 1 end
  local merged, inserted = {}, {}
  local i, j = p, 1
  while i <= #tail or j <= #news do
    local c
    if i > #tail then c = 1 elseif j > #news then c = -1 else c = cmp(tail[i], news[j]) end
    if c < 0 then merged[#merged + 1] = tail[i].raw; i = i + 1
    elseif c > 0 then
      merged[#merged + 1] = news[j].raw; inserted[#inserted + 1] = news[j]; j = j + 1
    else merged[#merged + 1] = tail[i].raw; i = i + 1; j = j + 1 end
  end
  if #inserted == 0 then return inserted end
  local keep = n - (#tail - p + 1)
  if keep > 0 then redis.call('LTRIM', K[1], 0, keep - 1) else redis.call('DEL', K[1]) end
  for a = 1, #merged, 1000 do
    local part = {}
    for b = a, math.min(a + 999, #merged) do part[#part + 1] = merged[b] end
    redis.call('RPUSH', K[1], unpack(part))
  end
  st.n = n + #inserted
  return inserted
end

-- Account for entries inserted into a state that stands at st.at.
local function account(st, ws, inserted)
  for _, x in ipairs(inserted) do
    if x.ts <= st.at then
      st.e = st.e + 1
      st.close = nil
      for i, w in ipairs(ws) do
        if x.ts > st.at - w.ms then add(st.tot[i], x, 1); st.dirty[i] = true
        else st.idx[i] = st.idx[i] + 1 end
      end
    end
  end
end

-- Walk entries from index `from` (below `limit`) while their ts <= bound,
-- calling fn(side, qhi, qlo) on each; returns the index of the first entry not
-- taken. Only ts, side and quote are read (entries were checked when
-- inserted). Chunks start small and grow: a call usually moves a pointer by a few.
-- Also returns the element it stopped at (the first not taken, if read) and
-- the last element it took (if in the final chunk), so prices need no LINDEX.
local function walk(key, from, limit, bound, fn)
  local size, last = 2, nil
  while from < limit do
    local raw = redis.call('LRANGE', key, from, math.min(from + size, limit) - 1)
    if #raw == 0 then error('corrupt: list shorter than its indices') end
    for i = 1, #raw do
      local ts, side, q = smatch(raw[i], '^(%d+) %d+ ([bs]) (%d+) ')
      if not ts then error('corrupt: unparsable list element at ' .. (from + i - 1)) end
      if tonumber(ts) > bound then return from + i - 1, raw[i], raw[i - 1] or last end
      local hi, lo = split_q(q)
      fn(side, hi, lo)
    end
    from = from + #raw
    if size < 1024 then size = size * 8 end
    last = raw[#raw]
  end
  return from, nil, last
end

-- walk() specialised to a window's start: subtract what left from totals `t`
-- (and collect the leavers' id digests into `gone`, for the longest window).
-- Returns the first index still inside and that element, if read.
local function expire(key, from, limit, bound, t, gone)
  local size = 2
  while from < limit do
    local raw = redis.call('LRANGE', key, from, math.min(from + size, limit) - 1)
    if #raw == 0 then error('corrupt: list shorter than its indices') end
    for i = 1, #raw do
      local r = raw[i]
      local ts, side, q = smatch(r, '^(%d+) %d+ ([bs]) (%d+) ')
      if not ts then error('corrupt: unparsable list element at ' .. (from + i - 1)) end
      if tonumber(ts) > bound then return from + i - 1, r end
      local hi, lo = split_q(q)
      if side == 'b' then
        t.b = t.b - 1; t.bh = t.bh - hi; t.bl = t.bl - lo
        if t.bl < 0 then t.bl = t.bl + NANO; t.bh = t.bh - 1 end
      else
        t.s = t.s - 1; t.sh = t.sh - hi; t.sl = t.sl - lo
        if t.sl < 0 then t.sl = t.sl + NANO; t.sh = t.sh - 1 end
      end
      if gone then gone[#gone + 1] = ssub(r, -DIGEST) end
    end
    from = from + #raw
    if size < 1024 then size = size * 8 end
  end
  return from, nil
end

-- Slide every window forward to `at` (>= st.at): add what entered, subtract
-- what left, walking from the stored indices. Never a rescan. Entries this
-- call appended (st.mem, from list index st.mem_from) are taken from memory.
local function advance(K, st, ws, at)
  local e0 = st.e
  local function enter(side, qhi, qlo)
    for i = 1, #ws do addq(st.tot[i], side, qhi, qlo, 1) end
  end
  local limit = st.n
  if st.mem and st.e < st.mem_from then limit = st.mem_from end
  local _, last
  st.e, _, last = walk(K[1], st.e, limit, at, enter)
  local close = last and price_of_raw(last)
  if st.mem and st.e >= st.mem_from then
    local j = st.e - st.mem_from + 1
    while j <= #st.mem and st.mem[j].ts <= at do
      local x = st.mem[j]
      enter(x.side, x.qhi, x.qlo)
      st.e = st.e + 1; j = j + 1
      close = x.price
    end
  end
  if st.e ~= e0 then st.close = close end
  st.opens, st.gone = {}, {}
  local n = #ws
  for i, w in ipairs(ws) do
    local i0 = st.idx[i]
    local stop
    st.idx[i], stop = expire(K[1], i0, st.e, at - w.ms, st.tot[i], i == n and st.gone or nil)
    if stop then st.opens[i] = price_of_raw(stop) end
    if st.idx[i] ~= i0 then st.dirty[i] = true end
    if st.idx[i] == st.e then st.tot[i] = new_totals() end
  end
  st.at = at
end

-- open of window i and the close, as price strings (false when empty); a
-- price is read from the list only when the window's first or last entry moved
local function prices(K, st, i)
  if st.idx[i] >= st.e then return false, false end
  if not st.close then st.close = price_at(K[1], st.e - 1) end
  if st.opens and st.opens[i] then return st.opens[i], st.close end
  local o = st.old and st.old[i]
  if st.dirty[i] or not o or not o.open or o.idx ~= st.idx[i] + (st.shift or 0) then
    return price_at(K[1], st.idx[i]), st.close
  end
  return o.open, st.close
end

local function pct(open, close)
  return sfmt('%.17g', (tonumber(close) - tonumber(open)) / tonumber(open) * 100)
end

local function volume(t)
  local vh, vl = t.bh + t.sh, t.bl + t.sl
  if vl >= NANO then vl = vl - NANO; vh = vh + 1 end
  return fmt_vol(vh, vl)
end

-- prices from in-memory entries instead of the list (reads of damaged tokens)
local function memory_prices(es)
  return function(st, i)
    if st.idx[i] >= st.e then return false, false end
    return es[st.idx[i] + 1].price, es[st.e].price
  end
end

-- Metrics of every window as a flat list: label, buys, sells, buy_volume,
-- sell_volume, volume, open|false, close|false, price_change_pct|false
local function metrics(K, st, ws, price_of)
  local out = {}
  for i, w in ipairs(ws) do
    local t = st.tot[i]
    local open, close
    if price_of then open, close = price_of(st, i) else open, close = prices(K, st, i) end
    out[#out + 1] = w.label; out[#out + 1] = fmt_int(t.b); out[#out + 1] = fmt_int(t.s)
    out[#out + 1] = fmt_vol(t.bh, t.bl); out[#out + 1] = fmt_vol(t.sh, t.sl)
    out[#out + 1] = volume(t)
    out[#out + 1] = open; out[#out + 1] = close
    out[#out + 1] = open and pct(open, close)
  end
  return out
end

-- Fields of windows that are no longer configured (TRADEAGG_WINDOWS changed)
local function retire(K, ws)
  local keep = {}
  for _, w in ipairs(ws) do keep[w.label] = true end
  local gone, fields = {}, {}
  for _, label in ipairs(redis.call('HKEYS', K[2])) do
    if not keep[label] then
      gone[#gone + 1] = label
      for _, m in ipairs({'buys', 'sells', 'buy_volume', 'sell_volume', 'volume', 'open',
                          'close', 'price_change_pct'}) do
        fields[#fields + 1] = label .. ':' .. m
      end
    end
  end
  if #gone > 0 then
    redis.call('HDEL', K[2], unpack(gone))
    redis.call('HDEL', K[3], unpack(fields))
  end
end

-- HSET/HDEL arguments for the aggregate fields that changed since loading
local function changes(K, st, ws)
  local set, del = {}, {}
  for i, w in ipairs(ws) do
    local t, o = st.tot[i], st.old[i]
    local bchg = t.bh ~= o.bh or t.bl ~= o.bl
    local schg = t.sh ~= o.sh or t.sl ~= o.sl
    if t.b ~= o.b then set[#set + 1] = w.buys; set[#set + 1] = fmt_int(t.b) end
    if t.s ~= o.s then set[#set + 1] = w.sells; set[#set + 1] = fmt_int(t.s) end
    if bchg then set[#set + 1] = w.bv; set[#set + 1] = fmt_vol(t.bh, t.bl) end
    if schg then set[#set + 1] = w.sv; set[#set + 1] = fmt_vol(t.sh, t.sl) end
    if bchg or schg then set[#set + 1] = w.v; set[#set + 1] = volume(t) end
    local open, close = prices(K, st, i)
    if open then
      if open ~= o.open then set[#set + 1] = w.open; set[#set + 1] = open end
      if close ~= o.close then set[#set + 1] = w.close; set[#set + 1] = close end
      if open ~= o.open or close ~= o.close then
        set[#set + 1] = w.pct; set[#set + 1] = pct(open, close)
      end
    elseif o.open ~= false then
      del[#del + 1] = w.open; del[#del + 1] = w.close; del[#del + 1] = w.pct
    end
  end
  return set, del
end
