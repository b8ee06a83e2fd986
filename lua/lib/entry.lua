-- lib/entry.lua: the list entry, parsed and compared. A stored entry is
-- "<ts> <seq> <B|S><trader> <quote_nano> <price> <id>" (tradeagg/contract/entry.py),
-- its three integers in base 36 (lowercase digits; read by tonumber(x, 36)):
-- the compact form, marked by its capital side letter. Entries of earlier
-- releases, "<ts> <seq> <b|s><trader> <quote_nano> <price> <id>" with decimal
-- integers, still parse (a lowercase side letter) and stay as they are.
-- <trader> is 8 base64url characters of SHA-1 of the trader's wallet glued to the
-- side letter, or nothing (a trade of no known trader);
-- a new trade in ARGV may come with " <digest>" after it (the first DIGEST
-- hex digits of SHA-1(id), computed by the bridge), which only feeds the id
-- index key (lib/ids.lua) and is not stored: a stored entry's key is computed
-- from its id when it leaves the list. Entries of older releases end with
-- that digest too; they parse, and a rebuild rewrites them without it.
--@include lib/volume.lua
--@include lib/ids.lua

local DIGEST = 20
-- the entry's fields and their patterns, written once, in the decimal form, the
-- compact form and either (a walk's loose read of a stored, checked element);
-- patterns that capture only what a caller needs are derived from it (captures
-- cost allocations) (a glued field follows the one before it without a space)
local FIELDS = {{'ts', '%d+', '%w+', '%w+'}, {'seq', '%d+', '%w+', '%w+'},
                {'side', '[bs]', '[BS]', '[bsBS]'},
                {'trader', '[%w_%-]*', '[%w_%-]*', '[%w_%-]*', glued = true},
                {'quote', '%d+', '%w+', '%w+'}, {'price', '%S+', '%S+', '%S+'},
                {'id', '%S+', '%S+', '%S+'}}
local TRADER = 8  -- characters of a trader's digest (48 bits)

-- anchored pattern of the first `upto` fields of form `f` (2 decimal, 3
-- compact, 4 either), capturing those in `wanted`
local function head_pattern(upto, wanted, f)
  local out = {'^'}  -- joined once: every script call builds these patterns
  for i = 1, upto do
    local name, pat = FIELDS[i][1], FIELDS[i][f]
    if i > 1 and not FIELDS[i].glued then out[#out + 1] = ' ' end
    if wanted[name] then out[#out + 1] = '('; out[#out + 1] = pat; out[#out + 1] = ')'
    else out[#out + 1] = pat end
  end
  return table.concat(out)
end

local WALK = head_pattern(5, {ts = true, side = true, quote = true}, 4) .. ' '
-- the other patterns, and the side of a compact entry's capital letter
local PAT = {side = {B = 'b', S = 's'}}
PAT.price = head_pattern(6, {price = true}, 4) .. ' '
-- what the screener metrics need of an element (lib/screener.lua)
PAT.screen = head_pattern(6, {ts = true, side = true, trader = true, price = true}, 4) .. ' '
-- The whole-line patterns (PAT.entry36, PAT.entry10), built at their first use in
-- a script call: every call runs this file's top level (building them cost ~10 %
-- of an empty call's time), and they serve only lines the fast way (PAT.at) does
-- not take.
function PAT.wholes()
  local all = {ts = true, seq = true, side = true, trader = true, quote = true, price = true,
               id = true}
  PAT.entry36 = head_pattern(#FIELDS, all, 3) .. ' ?(%x*)$'  -- digest optional
  PAT.entry10 = head_pattern(#FIELDS, all, 2) .. ' ?(%x*)$'
end

-- The entry in s[p..e], the fast way, or false (unparsable) or nil (not a
-- compact entry: the patterns decide). For an entry without whitespace but
-- spaces (the caller checks): its head by PAT.fast, then price, id and
-- digest found by plain finds (the pattern matcher walking the ~100
-- characters of id and digest cost more than the rest of the parse). It
-- accepts exactly what PAT.entry36 does, into the same fields; with `store`,
-- as stored() leaves them (raw without the digest, the id index key from it).
PAT.fast = head_pattern(5, {ts = true, seq = true, side = true, trader = true, quote = true}, 3)
           .. ' ()'
function PAT.at(s, p, e, store)
  local ts, seq, side, tr, q, pp = smatch(s, PAT.fast, p)
  if not ts then return nil end  -- its tokens never match a newline: it lies inside the span
  local s1 = sfind(s, ' ', pp, true)  -- the price is s[pp..s1 - 1]
  local s2 = s1 and s1 < e and sfind(s, ' ', s1 + 1, true)  -- the id ends before s2
  if s2 and s2 > e then s2 = nil end
  -- a price and an id (non-empty), then the end, or a space and nothing (no
  -- digest) or DIGEST hex digits
  if not (s1 and s1 > pp and s1 < e and s2 ~= s1 + 1 and (#tr == 0 or #tr == TRADER)
          and (not s2 or s2 == e or (e - s2 == DIGEST and smatch(s, '^%x*()', s2 + 1) == e + 1))) then
    return false
  end
  local qhi, qlo = split_q(q, 36)
  local price = ssub(s, pp, s1 - 1)
  local pn = tonumber(price)
  if not pn or pn <= 0 or qhi > 1e9 or (qhi == 1e9 and qlo > 0) then return false end
  local dg = s2 and s2 < e
  local x = {ts = tonumber(ts, 36), seq = tonumber(seq, 36), side = PAT.side[side], tr = tr,
             qhi = qhi, qlo = qlo, price = price, id = ssub(s, s1 + 1, (s2 or e + 1) - 1),
             raw = ssub(s, p, (dg and store) and s2 - 1 or e)}
  if dg then
    if store then x.key = id_key(ssub(s, s2 + 1, s2 + 16)) else x.dg = ssub(s, s2 + 1, e) end
  end
  return x
end

-- whether s holds no whitespace but spaces (a newline too, unless `lines`):
-- plain finds, at C speed
function PAT.clean(s, lines)
  return not (sfind(s, '\t', 1, true) or sfind(s, '\r', 1, true) or sfind(s, '\v', 1, true)
              or sfind(s, '\f', 1, true) or (not lines and sfind(s, '\n', 1, true)))
end

-- An entry by the whole-line patterns alone (every form: compact, decimal, other
-- whitespace), or nil: parse's way for what the fast way (PAT.at) does not take
function PAT.whole(e)
  if not PAT.entry36 then PAT.wholes() end
  local ts, seq, side, tr, q, price, id, dg = smatch(e, PAT.entry36)
  local base = 36
  if not ts then
    base = 10
    ts, seq, side, tr, q, price, id, dg = smatch(e, PAT.entry10)
    if not ts then return nil end
  end
  if dg == '' then dg = nil elseif #dg ~= DIGEST then return nil end
  if tr ~= '' and #tr ~= TRADER then return nil end
  local qhi, qlo = split_q(q, base)
  local p = tonumber(price)
  -- a quote is at most 1e9 units (validation.py): sums of a list stay below 2^53
  if not p or p <= 0 or qhi > 1e9 or (qhi == 1e9 and qlo > 0) then return nil end
  return {ts = tonumber(ts, base), seq = tonumber(seq, base), side = PAT.side[side] or side,
          tr = tr, qhi = qhi, qlo = qlo, price = price, id = id, dg = dg, raw = e}
end

local function parse(e)
  if PAT.clean(e) then
    local x = PAT.at(e, 1, #e)
    if x ~= nil then return x or nil end
  end
  return PAT.whole(e)
end

-- ts, side, trader digest ('' if none) and price of a stored entry, as a table
-- (the screener's view of an element entering the windows); corrupt if unparsable
local function screen_item(raw)
  local ts, side, tr, price = smatch(raw, PAT.screen)
  if not ts then corrupt('unparsable list element ' .. ssub(raw, 1, 40)) end
  local s = PAT.side[side]
  return {ts = tonumber(ts, s and 36 or 10), side = s or side, tr = tr, price = price}
end

-- ts, side and quote (hi, lo) of a stored entry; nil if unparsable. Stored
-- entries were checked when inserted: only the head is read.
local function head(raw)
  local ts, side, q = smatch(raw, WALK)
  if not ts then return nil end
  local s = PAT.side[side]
  if s then
    local hi, lo = split_q(q, 36)
    return tonumber(ts, 36), s, hi, lo
  end
  local hi, lo = split_q(q)
  return tonumber(ts), side, hi, lo
end

local function price_of(raw) return raw and smatch(raw, PAT.price) end

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
  if not f.glued then ID_FIELD = ID_FIELD + 1 end
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

-- The new trades of one token: ARGV's lines (split on "\n" by plain finds,
-- empty ones skipped), parsed and stored (without their digest), sorted and
-- deduplicated (sort_unique); returns them and how many lines were unparsable.
-- A compact line takes the fast way (PAT.at) when the string holds no
-- whitespace but spaces and newlines; any other line goes through parse.
function PAT.news(s)
  local news, bad, n, p = {}, 0, #s, 1
  local clean = PAT.clean(s, true)
  while p <= n do
    local e = (sfind(s, '\n', p, true) or n + 1) - 1  -- the line is s[p..e]
    if e >= p then
      local x = nil
      if clean then x = PAT.at(s, p, e, true) end
      if x == nil then x = parse(ssub(s, p, e)); x = x and stored(x) end
      if x then news[#news + 1] = x else bad = bad + 1 end
    end
    p = e + 2
  end
  return (sort_unique(news)), bad
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
