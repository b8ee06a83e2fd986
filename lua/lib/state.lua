-- lib/state.lua: a token's state, loaded from its keys (checked cheaply on
-- every call) or counted from its list (a rebuild, or a read of a damaged
-- token). K = {trades, indices, aggregates, last_update[, ids]}.
-- A state: at (ms), n (list length), e (entries with ts <= at: the windows'
-- end), ws (the windows it keeps: the caller's and those the token carries),
-- idx[i] (first list index inside window i), tot[i] (totals of window i),
-- cf[i] (window i is partial: the instant from which it is complete),
-- old[i] (what is stored, to write only changes), tail (last entry),
-- added (windows the token did not carry, longest first: slide.lua seeds them),
-- checked (the deep check's memo stands: K[6], when given),
-- mark[i] = {B, C}: window i is being seeded (lib/slide.lua, `extend`): it
-- counts exactly the list entries with B < ts <= at (B > at - w), and the list
-- holds every applied trade after C; a window without a mark counts those
-- with at - w < ts <= at. Marks live in the id index (K[5]) as "~seed:<label>"
-- = "B C"; without K[5] (reads) none is known (a read never extends one),
-- cov (the instant after which the list holds every applied trade, as far as
-- the stored windows tell; -huge when nothing is missing; set only when a
-- window is added or marked: seeding is its one use),
-- sk (the screener's five sets, K[7..11], when given: lib/screener.lua; nil:
-- the seed's metrics only),
-- entered (with sk: the elements that entered the windows in this call).
--@include lib/entry.lua
--@include lib/screener.lua
--@include lib/windows.lua
--@include lib/ids.lua

-- what a state that was never written looks like: every field differs
-- (unknown: the hash may hold stale fields, so empty windows delete theirs)
local function blank_old(ws, unknown)
  local old = {}
  for i = 1, #ws do
    old[i] = {b = -1, s = -1, bh = -1, bl = -1, sh = -1, sl = -1, idx = -1, open = unknown,
              cf = unknown, scr = {-1, -1, -1, unknown, unknown}}
  end
  return old
end

-- The instant after which the token's list holds every trade it applied: the
-- list is kept for the longest window the token carries (`carried[i]`), and a
-- window added longer than that covers only what was kept (its stored
-- complete_from). -huge when nothing is known to be missing.
local function coverage(ws, carried, cf, at)
  local from, longest = -math.huge, nil
  for i, w in ipairs(ws) do
    if carried[i] then
      longest = w.ms
      if cf[i] then from = max(from, cf[i] - w.ms) end
    end
  end
  if longest then from = max(from, at - longest) end
  return from
end

-- complete_from of a window of `ms` added to a list covering trades after
-- `from`, as of `at`: nil when the window is complete already
local function complete_from(from, ms, at)
  local cf = from + ms
  if cf > at then return cf end
  return nil
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

-- The complete_from fields of windows `ws` (nil: none is stored). A carried
-- window stores the LOADED fields it has (the screener's only with its sets),
-- volume and, when it holds entries, price_change_pct, and complete_from
-- while it is partial: only when the aggregates hold more fields than that
-- (or fewer: damage) are they read.
-- Looking up an absent field scans a small hash whole, so the usual token,
-- complete, pays one HLEN instead. Buys, sells and both volumes are counted
-- as present: without one of them load_state fails whatever this returns.
local function partial_windows(K, ws, idx, agg, A)
  local want, per = 0, #agg / #ws
  for i = 1, #ws do
    if idx[i] then
      -- those four, volume, open and price_change_pct (with entries), close, and
      -- the screener's fields present
      local a = per * (i - 1)
      want = want + 5 + (agg[a + 5] and 2 or 0) + (agg[a + 6] and 1 or 0)
      for f = LOADED.seed + 1, per do if agg[a + f] then want = want + 1 end end
    end
  end
  if (A and A.n or redis.call('HLEN', K[3])) == want then return nil end
  local fields = {}
  for i, w in ipairs(ws) do fields[i] = w.complete_from end
  if A then
    for i, f in ipairs(fields) do fields[i] = A[f] or false end
    return fields
  end
  return redis.call('HMGET', K[3], unpack(fields))
end

-- The aggregates hash whole, as a map (field -> value; n: its fields). A call
-- with the screener's keys reads most of its fields (LOADED, the previous
-- windows', the long windows'): one HGETALL walks the listpack once, where
-- HMGET and HSET scan it from the head for every field (a 55-field HMGET of a
-- 125-field hash cost ~1.6x an HGETALL of it, measured in an EVAL loop).
local function hash_map(key)
  local all, A = redis.call('HGETALL', key), {}
  for j = 1, #all, 2 do A[all[j]] = all[j + 1] end
  A.n = #all / 2
  return A
end

local MARK = '~seed:'  -- a mark's field in the id index: MARK .. label

-- The marks of the partial windows the token carries (only with K[5]): a
-- malformed one, or one the window has outgrown (B <= at - w), is damage.
local function load_marks(K, st, ws, carried)
  if not K[5] or next(st.cf) == nil then return end  -- no partial window: no mark
  local fields, which = {}, {}
  for i, w in ipairs(ws) do
    if carried[i] and st.cf[i] then fields[#fields + 1] = MARK .. w.label; which[#fields] = i end
  end
  if #fields == 0 then return end
  local got = redis.call('HMGET', K[5], unpack(fields))
  for j, v in ipairs(got) do
    if v then
      local i = which[j]
      local b, c = smatch(v, '^(%-?%d+) (%-?%d+)$')
      b, c = tonumber(b), tonumber(c)
      if not b or not c or b <= st.at - ws[i].ms then
        corrupt('seeding mark of ' .. ws[i].label .. ' is ' .. v)
      end
      st.mark[i] = {b, c}; st.old_mark[i] = v
    end
  end
end

-- The instant after which the list holds every applied trade, as the stored
-- windows tell: the longest carried window's start, a partial window's
-- (unmarked: it counts what the list holds since then), a mark's C. Always at
-- or after the truth (the safe side: a window is never called complete early).
local function list_coverage(st, ws, carried)
  local from, longest = -math.huge, nil
  for i, w in ipairs(ws) do
    if carried[i] then
      longest = w.ms
      if st.mark[i] then from = max(from, st.mark[i][2])
      elseif st.cf[i] then from = max(from, st.cf[i] - w.ms) end
    end
  end
  if longest then from = max(from, st.at - longest) end
  return from
end

-- the screener's keys of K (lib/screener.lua), or nil: the seed's metrics only
local function screener_keys(K)
  if not K[7] then return nil end
  return {K[7], K[8], K[9], K[10], K[11]}
end

-- Load the stored state of a token, for the caller's windows `conf` and those
-- the token carries (st.ws). Returns nil when the token has no state (new or
-- expired); raises CORRUPT when the state is inconsistent. A window of `conf`
-- the token does not carry is listed in st.added (no index, no totals yet).
local function load_state(K, conf)
  local lu, memo = nil, false
  if K[6] then  -- with the deep check's memo, in the same round: MGET
    local got = redis.call('MGET', K[4], K[6])
    lu, memo = got[1], got[2]
  else lu = redis.call('GET', K[4]) end
  local n = redis.call('LLEN', K[1])
  if not lu then
    if n > 0 then corrupt('trades without last_update') end
    return nil
  end
  local st = {at = tonumber(lu), n = n, idx = {}, tot = {}, old = {}, dirty = {}, cf = {},
              checked = memo ~= false, sk = screener_keys(K)}
  if not st.at then corrupt('last_update is not a number') end
  if K[5] then
    st.ids = ids_open(K[5], n)
    if st.ids.n ~= n then corrupt('the id index does not match the list') end
  end
  -- the indices (a field per window carried): HMGET of the caller's labels and
  -- HLEN; holding more than found, the token carries windows the caller does
  -- not configure, read by HKEYS and HMGET again (a rolling deploy). (An HGETALL
  -- turned into a map cost ~2x the HMGET and HLEN, EVAL loop, 5 windows.)
  local idx, stored = redis.call('HMGET', K[2], unpack(conf.labels)), redis.call('HLEN', K[2])
  local ws, found = conf, 0
  for i = 1, #conf do if idx[i] then found = found + 1 end end
  if stored == 0 then corrupt('no index for any window') end
  if stored > found then  -- the token carries windows the caller does not configure
    local bad
    ws, bad = union(conf, redis.call('HKEYS', K[2]))
    if bad then corrupt('unknown window label ' .. bad) end
    idx = redis.call('HMGET', K[2], unpack(ws.labels))
  end
  st.ws = ws
  st.mark, st.old_mark = {}, {}
  -- the names of the fields read (LOADED, the first `seed` without the screener's
  -- sets), built at the first token of a script call that needs them
  local which = st.sk and 'load' or 'load_seed'
  local names = ws[which]
  if not names then
    names = {}
    for _, w in ipairs(ws) do
      for j = 1, st.sk and #LOADED or LOADED.seed do names[#names + 1] = w[LOADED[j]] end
    end
    ws[which] = names
  end
  local agg
  if st.sk then  -- the whole hash (hash_map), kept for the previous and long windows' loads
    st.agg, agg = hash_map(K[3]), {}
    for j, f in ipairs(names) do agg[j] = st.agg[f] or false end
  else agg = redis.call('HMGET', K[3], unpack(names)) end
  local cfs = partial_windows(K, ws, idx, agg, st.agg)
  -- the screener's sets are kept for this list (the id index's "S"): a list written
  -- without them (TRADEAGG_METRICS=seed, an earlier release) is rebuilt by an apply
  if st.sk and st.ids and n > 0 and not st.ids.screened then
    corrupt('no screener sets (written without them)')
  end
  if st.sk or conf.long then st.entered = {} end
  st.long = conf.long
  local e = n
  if n > 0 then
    st.tail = entry_at(K[1], n - 1)
    if st.tail.ts > st.at then e = first_after(K[1], n, st.at) end
  end
  st.e = e
  local prev = 0
  local per = #agg / #ws
  local carried = {}
  local bv, bh, bl, sv, sh, sl
  for i = #ws, 1, -1 do
    if idx[i] == false then
      -- a window the token never carried has no fields either
      if agg[per * (i - 1) + 1] then corrupt('no index for ' .. ws[i].label) end
      st.added = st.added or {}
      st.added[#st.added + 1] = i
    else
      carried[i] = true
      local x = tonumber(idx[i])
      if not x or x < prev or x > e or x ~= floor(x) then
        corrupt('index of ' .. ws[i].label .. ' is ' .. tostring(idx[i]))
      end
      prev = x
      local a = per * (i - 1)
      local t = new_totals()
      t.b = tonumber(agg[a + 1]); t.s = tonumber(agg[a + 2])
      -- windows starting at the same entry store the same texts: parsed once
      if agg[a + 3] ~= bv then bv = agg[a + 3]; bh, bl = parse_vol(bv) end
      if agg[a + 4] ~= sv then sv = agg[a + 4]; sh, sl = parse_vol(sv) end
      t.bh, t.bl, t.sh, t.sl = bh, bl, sh, sl
      local open, close, cf = agg[a + 5], agg[a + 6], cfs and cfs[i]
      if not (t.b and t.s and t.bh and t.sh) or t.b + t.s ~= e - x or t.b < 0 or t.s < 0
         or (x < e) ~= (open ~= false) or (cf and not tonumber(cf)) then
        corrupt('totals of ' .. ws[i].label .. ' do not match the list')
      end
      st.idx[i] = x; st.tot[i] = t; st.cf[i] = tonumber(cf)
      st.old[i] = {b = t.b, s = t.s, bh = t.bh, bl = t.bl, sh = t.sh, sl = t.sl, idx = x,
                   open = open, close = close, cf = st.cf[i] or false,
                   -- the screener's (read only where st.scr is: with its sets)
                   scr = per > LOADED.seed
                         and {tonumber(agg[a + 7]) or -1, tonumber(agg[a + 8]) or -1,
                              tonumber(agg[a + 9]) or -1, agg[a + 10], agg[a + 11]}
                         or nil}
      if close then st.close = close end
    end
  end
  load_marks(K, st, ws, carried)
  if st.added or next(st.mark) ~= nil then  -- windows to seed (lib/slide.lua) need it
    st.cov = list_coverage(st, ws, carried)
  end
  if st.added then
    for _, i in ipairs(st.added) do
      st.cf[i] = complete_from(st.cov, ws[i].ms, st.at)
      st.old[i] = blank_old({ws[i]}, true)[1]
    end
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
  local st = {at = at, n = #es, idx = {}, tot = {}, old = blank_old(ws, true), dirty = {},
              cf = {}, ws = ws, mark = {}, old_mark = {}}
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

-- The windows a token carries by its keys (labels of its indices and of its
-- aggregates' fields) with the caller's `conf`, and each one's complete_from
-- as of `at` (stored, or for a window it did not carry, from the coverage).
-- Keys of a wrong type are taken as empty.
local function carried_windows(K, conf, at)
  local labels, seen = {}, {}
  local function note(label)
    if label and not seen[label] then seen[label] = true; labels[#labels + 1] = label end
  end
  if redis.call('TYPE', K[2])['ok'] == 'hash' then
    for _, label in ipairs(redis.call('HKEYS', K[2])) do note(label) end
  end
  local hashed = redis.call('TYPE', K[3])['ok'] == 'hash'
  if hashed then
    for _, f in ipairs(redis.call('HKEYS', K[3])) do
      local label = smatch(f, '^(.-):')
      if not (conf.long and conf.long.has[label]) then note(label) end  -- lib/long.lua's
    end
  end
  local ws = union(conf, labels)
  local cf, carried = {}, {}
  if hashed then
    local fields = {}
    for i, w in ipairs(ws) do fields[i] = w.complete_from end
    local got = redis.call('HMGET', K[3], unpack(fields))
    for i = 1, #ws do cf[i] = tonumber(got[i]) end
  end
  for i, w in ipairs(ws) do carried[i] = seen[w.label] or false end
  local from = coverage(ws, carried, cf, at)
  for i, w in ipairs(ws) do
    if not carried[i] then cf[i] = complete_from(from, w.ms, at) end
  end
  return ws, cf
end

-- State rebuilt from the list alone (requirement 8.4): unparsable elements
-- dropped, order and uniqueness restored, the list rewritten if it changed.
-- Keeps every window the token carried. Returns the state as of `at`, and the
-- number of elements dropped.
local function rebuild(K, conf, at)
  local es, dropped, ix = trusted_entries(K, true)
  local ws, cf = carried_windows(K, conf, at)
  local st = state_of(es, ws, at)
  st.cf = cf
  st.ids = ix
  st.sk = screener_keys(K)
  if st.sk then  -- the five sets again, from what entered the windows
    screener_del(st.sk)
    local xs, from = {}, at - ws[#ws].ms
    for _, x in ipairs(es) do if x.ts > from and x.ts <= at then xs[#xs + 1] = x end end
    screener_feed(st.sk, xs)
    st.entered = {}
  end
  if conf.long then st.entered, st.long = {}, conf.long end
  return st, dropped
end
