-- lib/entry.lua: the list entry, parsed and compared. A stored entry is
-- "<ts> <seq> <b|s><trader> <quote_nano> <price> <id>" (tradeagg/contract/entry.py);
-- <trader> is 8 base64url characters of SHA-1 of the trader's wallet glued to the
-- side letter, or nothing (entries of earlier releases: a trade of no known trader);
-- a new trade in ARGV may come with " <digest>" after it (the first DIGEST
-- hex digits of SHA-1(id), computed by the bridge), which only feeds the id
-- index key (lib/ids.lua) and is not stored: a stored entry's key is computed
-- from its id when it leaves the list. Entries of earlier releases end with
-- that digest too; they parse, and a rebuild rewrites them without it.
--@include lib/volume.lua
--@include lib/ids.lua

local DIGEST = 20
-- the entry's fields and their patterns, written once; patterns that capture
-- only what a caller needs are derived from it (captures cost allocations)
-- (a glued field follows the one before it without a space)
local FIELDS = {{'ts', '%d+'}, {'seq', '%d+'}, {'side', '[bs]'}, {'trader', '[%w_%-]*', true},
                {'quote', '%d+'}, {'price', '%S+'}, {'id', '%S+'}}
local TRADER = 8  -- characters of a trader's digest (48 bits)

-- anchored pattern of the first `upto` fields, capturing those in `wanted`
local function head_pattern(upto, wanted)
  local out = '^'
  for i = 1, upto do
    local name, pat, glued = FIELDS[i][1], FIELDS[i][2], FIELDS[i][3]
    if i > 1 and not glued then out = out .. ' ' end
    out = out .. (wanted[name] and ('(' .. pat .. ')') or pat)
  end
  return out
end

local ALL = {ts = true, seq = true, side = true, trader = true, quote = true, price = true,
             id = true}
local ENTRY = head_pattern(#FIELDS, ALL) .. ' ?(%x*)$'  -- digest optional
local WALK = head_pattern(5, {ts = true, side = true, quote = true}) .. ' '
local PRICE = head_pattern(6, {price = true}) .. ' '
-- what the screener metrics need of an element (lib/screener.lua)
local SCREEN = head_pattern(6, {ts = true, side = true, trader = true, price = true}) .. ' '

local function parse(e)
  local ts, seq, side, tr, q, price, id, dg = smatch(e, ENTRY)
  if not ts then return nil end
  if dg == '' then dg = nil elseif #dg ~= DIGEST then return nil end
  if tr ~= '' and #tr ~= TRADER then return nil end
  local qhi, qlo = split_q(q)
  local p = tonumber(price)
  -- a quote is at most 1e9 units (validation.py): sums of a list stay below 2^53
  if not p or p <= 0 or qhi > 1e9 or (qhi == 1e9 and qlo > 0) then return nil end
  return {ts = tonumber(ts), seq = tonumber(seq), side = side, tr = tr, qhi = qhi, qlo = qlo,
          price = price, id = id, dg = dg, raw = e}
end

-- ts, side, trader digest ('' if none) and price of a stored entry, as a table
-- (the screener's view of an element entering the windows); corrupt if unparsable
local function screen_item(raw)
  local ts, side, tr, price = smatch(raw, SCREEN)
  if not ts then corrupt('unparsable list element ' .. ssub(raw, 1, 40)) end
  return {ts = tonumber(ts), side = side, tr = tr, price = price}
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

-- a parsed entry as the list stores it: without the digest it came with
-- the id index key of a parsed entry: from its digest if it came with one
local function key_of(x)
  if not x.key then x.key = id_key(x.dg or redis.sha1hex(x.id)) end
  return x.key
end

-- a parsed entry as the list stores it: without the digest it came with
-- (its id index key taken from the digest first)
local function stored(x)
  if x.dg then
    key_of(x)
    x.raw = ssub(x.raw, 1, -(#x.dg + 2)); x.dg = nil
  end
  return x
end

-- the id index key of a stored element: its id is the field after the
-- ID_FIELD - 1 first spaces (plain finds: a third of a pattern match's time)
local ID_FIELD = 0
for _, f in ipairs(FIELDS) do
  if not f[3] then ID_FIELD = ID_FIELD + 1 end
  if f[1] == 'id' then break end
end
local function key_of_raw(raw)
  local p = 0
  for _ = 2, ID_FIELD do
    p = sfind(raw, ' ', p + 1, true)
    if not p then corrupt('no id in list element ' .. ssub(raw, 1, 40)) end
  end
  local q = sfind(raw, ' ', p + 1, true)
  return id_key(redis.sha1hex(ssub(raw, p + 1, q and q - 1 or -1)))
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
