-- lib/state.lua: a token's state, loaded from its keys (checked cheaply on
-- every call) or counted from its list (a rebuild, or a read of a damaged
-- token). K = {trades, indices, aggregates, last_update[, ids]}.
-- A state: at (ms), n (list length), e (entries with ts <= at: the windows'
-- end), idx[i] (first list index inside window i), tot[i] (totals of window
-- i), old[i] (what is stored, to write only changes), tail (last entry).
--@include lib/entry.lua
--@include lib/windows.lua
--@include lib/ids.lua

-- what a state that was never written looks like: every field differs
-- (unknown: the hash may hold stale fields, so empty windows delete theirs)
local function blank_old(ws, unknown)
  local old = {}
  for i = 1, #ws do
    old[i] = {b = -1, s = -1, bh = -1, bl = -1, sh = -1, sl = -1, idx = -1, open = unknown}
  end
  return old
end

local function ts_at(key, idx)
  local raw = lindex(key, idx)
  local ts = raw and head(raw)
  if not ts then corrupt('unparsable list element at ' .. idx) end
  return ts
end

-- The first index of entries stamped after `at`, given that the last one
-- (index n - 1) is: gallop back from the end, then bisect; O(log d) LINDEX
-- for d such entries, instead of one per entry.
local function first_after(key, n, at)
  local lo, hi, step = 0, n - 1, 1
  while n - 1 - step >= 0 do
    local probe = n - 1 - step
    if ts_at(key, probe) <= at then lo = probe + 1; break end
    hi = probe; step = step * 2
  end
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if ts_at(key, mid) > at then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- Load the stored state of a token. Returns nil when the token has no state
-- (new or expired); raises CORRUPT when the state is inconsistent.
local function load_state(K, ws)
  local lu = redis.call('GET', K[4])
  local n = redis.call('LLEN', K[1])
  if not lu then
    if n > 0 then corrupt('trades without last_update') end
    return nil
  end
  local st = {at = tonumber(lu), n = n, idx = {}, tot = {}, old = {}, dirty = {}}
  if not st.at then corrupt('last_update is not a number') end
  if K[5] then
    st.ids = ids_open(K[5], n)
    if st.ids.n ~= n then corrupt('the id index does not match the list') end
  end
  local idx = redis.call('HMGET', K[2], unpack(ws.labels))
  st.retired = redis.call('HLEN', K[2]) > #ws  -- windows no longer configured
  local agg = redis.call('HMGET', K[3], unpack(ws.load))
  local e = n
  if n > 0 then
    st.tail = entry_at(K[1], n - 1)
    if st.tail.ts > st.at then e = first_after(K[1], n, st.at) end
  end
  st.e = e
  local prev = 0
  local per = #LOADED
  for i = #ws, 1, -1 do
    if idx[i] == false then fail(CORRUPT, 'windows changed: no index for ' .. ws[i].label) end
    local x = tonumber(idx[i])
    if not x or x < prev or x > e or x ~= floor(x) then
      corrupt('index of ' .. ws[i].label .. ' is ' .. tostring(idx[i]))
    end
    prev = x
    local a = per * (i - 1)
    local t = new_totals()
    t.b = tonumber(agg[a + 1]); t.s = tonumber(agg[a + 2])
    t.bh, t.bl = parse_vol(agg[a + 3]); t.sh, t.sl = parse_vol(agg[a + 4])
    local open, close = agg[a + 5], agg[a + 6]
    if not (t.b and t.s and t.bh and t.sh) or t.b + t.s ~= e - x or t.b < 0 or t.s < 0
       or (x < e) ~= (open ~= false) then
      corrupt('totals of ' .. ws[i].label .. ' do not match the list')
    end
    st.idx[i] = x; st.tot[i] = t
    st.old[i] = {b = t.b, s = t.s, bh = t.bh, bl = t.bl, sh = t.sh, sl = t.sl, idx = x,
                 open = open, close = close}
    if close then st.close = close end
  end
  return st
end

-- The list's parseable elements in order, without repeats: what can be
-- trusted of a damaged token. With `repair`, keys of a wrong type are deleted,
-- a changed list is written back (elements of earlier releases without their
-- digest) and the id index is built again. Returns entries, elements dropped
-- and the id index (with `repair` and K[5]).
local function trusted_entries(K, repair)
  local typ = redis.call('TYPE', K[1])['ok']
  local raw = {}
  if typ == 'list' then raw = lrange(K[1], 0, -1)
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
      if e.dg then stored(e); changed = true end
      es[#es + 1] = e
    else dropped = dropped + 1; changed = true end
  end
  local repeats, reordered
  es, repeats, reordered = sort_unique(es)
  if reordered then changed = true end
  dropped = dropped + repeats
  local ix
  if repair and K[5] then
    -- the id index again, from what is kept; a repeated id keeps its first trade
    local seen, keep, ks = {}, {}, {}
    for _, e in ipairs(es) do
      local k = key_of(e)
      if seen[k] then dropped = dropped + 1; changed = true
      else seen[k] = true; keep[#keep + 1] = e; ks[#ks + 1] = k end
    end
    es = keep
    ix = ids_build(K[5], ks)
  end
  if changed and repair then
    redis.call('DEL', K[1])
    push(K[1], raws(es))
  end
  return es, dropped, ix
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
  local es, dropped, ix = trusted_entries(K, true)
  local st = state_of(es, ws, at)
  st.ids = ix
  return st, dropped
end
