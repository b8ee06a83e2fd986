-- lib/entry.lua: the list entry, parsed and compared. An entry is
-- "<ts> <seq> <b|s> <quote_nano> <price> <id> <digest>" (tradeagg/contract/
-- trade.py); a new trade in ARGV may come without its digest, which is the
-- first DIGEST hex digits of SHA-1(id), also kept in tradeagg:{A}:ids.
--@include lib/volume.lua

local DIGEST = 20
-- the entry's fields and their patterns, written once; patterns that capture
-- only what a caller needs are derived from it (captures cost allocations)
local FIELDS = {{'ts', '%d+'}, {'seq', '%d+'}, {'side', '[bs]'}, {'quote', '%d+'},
                {'price', '%S+'}, {'id', '%S+'}}

-- anchored pattern of the first `upto` fields, capturing those in `wanted`
local function head_pattern(upto, wanted)
  local parts = {}
  for i = 1, upto do
    local name, pat = FIELDS[i][1], FIELDS[i][2]
    parts[i] = wanted[name] and ('(' .. pat .. ')') or pat
  end
  return '^' .. table.concat(parts, ' ')
end

local ALL = {ts = true, seq = true, side = true, quote = true, price = true, id = true}
local ENTRY = head_pattern(#FIELDS, ALL) .. ' ?(%x*)$'  -- digest optional
local WALK = head_pattern(4, {ts = true, side = true, quote = true}) .. ' '
local PRICE = head_pattern(5, {price = true}) .. ' '

local function digest(id) return ssub(redis.sha1hex(id), 1, DIGEST) end

local function parse(e)
  local ts, seq, side, q, price, id, dg = smatch(e, ENTRY)
  if not ts then return nil end
  if dg == '' then dg = nil elseif #dg ~= DIGEST then return nil end
  local qhi, qlo = split_q(q)
  local p = tonumber(price)
  -- a quote is at most 1e9 units (validation.py): sums of a list stay below 2^53
  if not p or p <= 0 or qhi > 1e9 or (qhi == 1e9 and qlo > 0) then return nil end
  return {ts = tonumber(ts), seq = tonumber(seq), side = side, qhi = qhi, qlo = qlo,
          price = price, id = id, dg = dg, raw = e}
end

-- ts, side and quote (hi, lo) of a stored entry; nil if unparsable. Stored
-- entries were checked when inserted: only the head is read.
local function head(raw)
  local ts, side, q = smatch(raw, WALK)
  if not ts then return nil end
  local hi, lo = split_q(q)
  return tonumber(ts), side, hi, lo
end

local function price_of(raw) return raw and smatch(raw, PRICE) end

-- the id digest a stored entry ends with
local function digest_of(raw) return ssub(raw, -DIGEST) end

-- a parsed new trade as it is stored: with its id digest
local function stamp(x)
  if not x.dg then x.dg = digest(x.id); x.raw = x.raw .. ' ' .. x.dg end
  return x
end

local function raws(es)
  local out = {}
  for i = 1, #es do out[i] = es[i].raw end
  return out
end

-- byte order of two ids (Lua's < on strings follows the server's locale)
local function id_lt(a, b)
  if a == b then return false end
  local n = min(#a, #b)
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

local function before(a, b) return cmp(a, b) < 0 end

-- sort entries and drop repeats (equal ts, seq and id); returns the entries,
-- the number dropped and whether the order changed
local function sort_unique(es)
  local sorted = true
  for i = 2, #es do
    if cmp(es[i - 1], es[i]) >= 0 then sorted = false; break end
  end
  if sorted then return es, 0, false end
  table.sort(es, before)
  local uniq = {}
  for i = 1, #es do
    if i == 1 or cmp(es[i - 1], es[i]) ~= 0 then uniq[#uniq + 1] = es[i] end
  end
  return uniq, #es - #uniq, true
end

-- the element at `idx`, parsed; corrupt if missing or unparsable
local function entry_at(key, idx)
  local raw = lindex(key, idx)
  if not raw then corrupt('no list element at ' .. idx) end
  local e = parse(raw)
  if not e then corrupt('unparsable list element at ' .. idx) end
  return e
end

local function price_at(key, idx)
  local p = price_of(lindex(key, idx))
  if not p then corrupt('no price in list element at ' .. idx) end
  return p
end
