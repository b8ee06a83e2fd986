-- apply_trades.lua: apply a batch of trades to one or more tokens.
-- Per token: drop duplicates (an id already in the token's id index) and late
-- trades (ts <= at - longest window), insert the rest in (ts, seq, id) order,
-- update every window incrementally from its stored index, trim the list to
-- the longest window, write indices, aggregates and last_update, refresh TTLs.
-- A token whose state is corrupt is rebuilt from its list first (req. 8.4).
-- With no trades for a token it only slides that token's windows to now.
-- A token keeps every window it carries besides the caller's (releases with
-- other TRADEAGG_WINDOWS share it; `tradeagg windows retire` drops windows):
-- lateness, trimming and TTL follow the longest of them. A window the token
-- did not carry is added, counted from the list, and marked partial
-- ("<label>:complete_from") when the list was not kept long enough for it.
--
-- KEYS: 6 per token, in order: token:{A}:trades, token:{A}:indices,
--       token:{A}:aggregates, token:{A}:last_update, tradeagg:{A}:ids,
--       tradeagg:{A}:checked (the deep check's memo: deleted when trades are
--       added, the token is rebuilt or gains a window),
--       then, to keep the screener metrics (makers, buyers, sellers, high, low:
--       lib/screener.lua), 5 more: tradeagg:{A}:makers, tradeagg:{A}:buyers,
--       tradeagg:{A}:sellers, tradeagg:{A}:high, tradeagg:{A}:low, then, with
--       long windows in ARGV[3] (lib/long.lua), 3 more: tradeagg:{A}:buckets,
--       tradeagg:{A}:bhigh, tradeagg:{A}:blow. The keys per token are
--       #KEYS / (#ARGV - 4): 6 (the seed's metrics only) or 11, 9, 14 or 16 with long windows.
--       With 14 keys and a bucket in ARGV[3], every window also keeps its previous
--       window's metrics (lib/prev.lua: L:prev_buys, L:prev_sells, L:prev_volume,
--       L:volume_change_pct, L:prev_from, L:prev_complete_from), long windows or not;
--       with 2 more, tradeagg:{A}:pmakers and tradeagg:{A}:ptraders (16 keys), also
--       L:prev_makers (lib/pmakers.lua).
-- ARGV[1] now, epoch ms (the caller's clock, or the instant it asks for)
-- ARGV[2] clock: "wall" (live: windows end at now, clamped to Redis' TIME so
--         no caller's clock runs ahead of the others), "at" (windows end at
--         now exactly: an explicit instant) or "event" (at the newest trade)
-- ARGV[3] windows "label:ms,label:ms,..." shortest first; with long (bucketed)
--         windows: "<exact windows>|<long windows>;<bucket ms>" (lib/windows.lua);
--         for the previous windows only: "<exact windows>|;<bucket ms>"; followed
--         by ";-": the previous windows turned off (none kept, stored ones deleted)
-- ARGV[4] most entries a token's list may hold
-- ARGV[5..] one per token: its list entries "<ts> <seq> <b|s><trader> <quote_nano> <price> <id>",
--          each optionally followed by " <digest>" (20 hex of SHA-1(id): not
--          stored, it spares computing the id's key), joined by "\n" (empty:
--          no new trades, only slide the windows)
-- Returns: per token R_FIELDS values in the order of R (lib/status.lua):
--          status (BEHIND: the windows stopped short of now, each walk taking
--          at most SLIDE_MAX + the trades inserted; call again. REBUILDING: one
--          step of a long rebuild (lib/rebuild.lua) was taken and no trade was
--          applied; call again with the same trades), applied, duplicates,
--          late, over_capacity, rebuilt (-1 if not, else elements dropped),
--          unparsable, last_update (ms text, "" if no state), touched,
--          scanned, detail ("" or why)
--@include lib/insert.lua
--@include lib/slide.lua
--@include lib/rebuild.lua
--@include lib/prev.lua

local now = tonumber(ARGV[1])
local clock = ARGV[2]
local conf = parse_windows(ARGV[3])
local cap = tonumber(ARGV[4])
-- the windows of the token in hand (conf and those it carries), set per token
local ws = conf
local longest = ws[#ws].ms

if clock == 'wall' then
  local t = redis.call('TIME')
  now = min(now, tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000))
end

-- The seeding marks that changed (lib/state.lua), in the id index; a window
-- whose start has passed its mark's boundary counts as any other: unmarked.
local function write_marks(K, st)
  if next(st.mark) == nil and next(st.old_mark) == nil then return end  -- none, before or after
  local set, del = {}, {}
  for i, w in ipairs(ws) do
    local m, v = st.mark[i], nil
    if m and m[1] > st.at - w.ms and st.n > 0 then v = fmt_int(m[1]) .. ' ' .. fmt_int(m[2]) end
    if v ~= (st.old_mark[i] or nil) then
      if v then set[#set + 1] = MARK .. w.label; set[#set + 1] = v
      else del[#del + 1] = MARK .. w.label end
    end
  end
  if #set > 0 then redis.call('HSET', K[5], unpack(set)) end
  if #del > 0 and st.n > 0 then redis.call('HDEL', K[5], unpack(del)) end
end

local function write(K, st, at, fresh_ttl, rebuilt)
  local idx = {}  -- the windows whose index moved
  for i, w in ipairs(ws) do
    if st.idx[i] ~= st.old[i].idx then idx[#idx + 1] = w.label; idx[#idx + 1] = st.idx[i] end
  end
  if #idx > 0 then redis.call('HSET', K[2], unpack(idx)) end
  if rebuilt then retire(K, ws) end
  write_marks(K, st)
  if rebuilt or (st.checked and (fresh_ttl or st.added or st.seeding)) then redis.call('DEL', K[6]) end
  local set, del = changes(K, st, ws)
  -- previous windows turned off (ARGV[3] ";-"): those an earlier setting kept go, found
  -- by the longest exact window's L:prev_from (every window kept one with them)
  local pf = ws[#ws].prev_from
  if conf.noprev and st.sk and (st.agg and st.agg[pf] or not st.agg and redis.call('HEXISTS', K[3], pf) == 1) then
    for _, w in ipairs(LONG.P.wins(ws, conf.long)) do
      for _, m in ipairs(LONG.P.F) do del[#del + 1] = w.label .. ':' .. m end
    end
    if K[15] then redis.call('UNLINK', K[15], K[16]) end  -- prev_makers' (lib/pmakers.lua)
  end
  -- with those of the long and previous windows (LONG.step, LONG.P.write)
  for _, v in ipairs(st.hset) do set[#set + 1] = v end
  for _, v in ipairs(st.hdel) do del[#del + 1] = v end
  if #set > 0 then chunked('HSET', K[3], set) end
  if #del > 0 then chunked('HDEL', K[3], del) end
  if fresh_ttl or rebuilt then
    -- new trades: a full TTL, from the newest trade when it is ahead of at (a
    -- future-stamped trade stays until it leaves its window). A rebuild without
    -- trades may have recreated keys (losing their TTL): they get what
    -- last_update had left.
    -- the four keys live as long as the longest window, long ones included
    local ttl = conf.long and max(longest, conf.long[#conf.long].ms) or longest
    if fresh_ttl and st.n > 0 then
      local newest = st.tail and st.tail.ts  -- the list's last entry (lib/insert.lua)
      if not newest then newest = head(redis.call('LINDEX', K[1], -1)) end
      if newest and newest > at then ttl = ttl + (newest - at) end
    end
    if not fresh_ttl then
      local left = redis.call('PTTL', K[4])
      if type(left) == 'number' and left > 0 then ttl = left end
    end
    redis.call('SET', K[4], fmt_int(at), 'PX', ttl)
    redis.call('PEXPIRE', K[2], ttl)
    redis.call('PEXPIRE', K[3], ttl)
    if st.n > 0 then
      redis.call('PEXPIRE', K[1], ttl)
      redis.call('PEXPIRE', K[5], ttl)
    end
    if st.sk then for _, k in ipairs(st.sk) do redis.call('PEXPIRE', k, ttl) end end
  else
    if st.fed then  -- a set may have been emptied, then created again: the token's TTL
      local left = redis.call('PTTL', K[4])
      if type(left) == 'number' and left > 0 then
        for _, k in ipairs(st.sk) do redis.call('PEXPIRE', k, left) end
      end
    end
    redis.call('SET', K[4], fmt_int(at), 'KEEPTTL')
  end
end

-- The trades whose id the token has not seen (by id key, in its id index or
-- earlier in this batch).
local function unseen(ix, xs)
  if #xs == 0 then return xs end
  local ks = {}
  for j, x in ipairs(xs) do ks[j] = key_of(x) end
  local bs = ids_fetch(ix, ks)
  local out, batch = {}, {}
  for j, x in ipairs(xs) do
    local k = ks[j]
    x.bucket = bs[j]
    if not ids_has(ix, k, x.bucket) and not batch[k] then batch[k] = true; out[#out + 1] = x end
  end
  return out
end

-- Drop what left the longest window from the list and the id index. Not
-- while that window is being seeded (marked): what precedes its index may
-- still enter it.
local function trim(K, st)
  -- most elements a trim reads back (elements left untrimmed before the longest
  -- window's index, e.g. while it was being seeded, go over several calls); a
  -- local of the function: the main chunk is at Lua's 200 locals (lib/long.lua)
  local TRIM_MAX = 4096
  local drop = st.idx[#ws]
  if drop == 0 or (st.mark[#ws] and not st.all_gone) then return end
  if st.all_gone then
    -- the id index holds exactly the list's ids; UNLINK: a long list is freed by a
    -- background thread, not inside this call
    redis.call('UNLINK', K[1], K[5])
    st.ids = ids_new(K[5])
    drop = st.n
  else
    local gone = st.gone  -- the elements the longest window's walk passed
    if not gone or #gone ~= drop then
      drop = min(drop, TRIM_MAX)
      gone = lrange(K[1], 0, drop - 1)
    end
    local ks = {}
    for j, raw in ipairs(gone) do ks[j] = key_of_raw(raw) end
    ids_fetch(st.ids, ks)
    for _, k in ipairs(ks) do ids_remove(st.ids, k) end
    if drop < st.n then redis.call('LTRIM', K[1], drop, -1) else redis.call('DEL', K[1]) end
  end
  st.n = st.n - drop; st.e = st.e - drop
  for i = 1, #ws do st.idx[i] = st.idx[i] - drop end
  st.shift = drop
end

local function loaded(K)
  local st = load_state(K, conf)
  if st then seed(K, st, st.ws) end
  return st
end

local function apply_token(K, news, r)
  -- a rebuild under way fails the load too (indices deleted, id index partial): next step
  local ok, st = pcall(loaded, K)
  if not ok then
    local _, why = caught(st)
    local lu = tonumber(redis.pcall('GET', K[4]))
    local dropped
    st, dropped = rebuild_step(K, conf, lu or now)
    if not dropped then  -- more steps to go: none of the trades is applied yet
      r[R.status], r[R.detail], r[R.last_update] = REBUILDING, why, lu and fmt_int(lu) or ''
      return
    end
    r[R.status], r[R.detail], r[R.rebuilt] = REBUILT, why, dropped
  end
  ws = st and st.ws or conf
  longest = ws[#ws].ms
  local maxts = nil
  for _, x in ipairs(news) do if not maxts or x.ts > maxts then maxts = x.ts end end
  local target = now
  if clock == 'event' then target = maxts or (st and st.at) or now end
  if st == nil then
    if not maxts then return end
    redis.call('DEL', K[5], K[6])  -- an id index (or memo) left over from an expired state
    local sk = screener_keys(K)
    if sk then screener_del(sk) end
    if conf.long or (sk and K[12]) then LONG.del(K) end  -- buckets of an expired state
    st = {at = -1e18, n = 0, e = 0, idx = {}, tot = {}, old = blank_old(ws, false), dirty = {},
      ids = ids_new(K[5]), cf = {}, mark = {}, old_mark = {}, sk = sk,
      entered = (sk or conf.long) and {}, long = conf.long}
    for i = 1, #ws do st.idx[i] = 0; st.tot[i] = new_totals() end
  end
  local at = max(st.at, target)
  local valid, late, over = {}, 0, 0
  for _, x in ipairs(news) do
    if x.ts <= at - longest then late = late + 1
    elseif st.n + #valid >= cap then over = over + 1
    else valid[#valid + 1] = x end
  end
  valid = unseen(st.ids, valid)
  st.n0 = st.n  -- the list's length as loaded (prev_makers' marker, lib/pmakers.lua)
  local fresh = st.at == -1e18
  local inserted = insert(K, st, valid)
  for _, x in ipairs(inserted) do ids_add(st.ids, x.key, x.bucket) end
  r[R.late], r[R.over_capacity] = late, over
  r[R.applied], r[R.duplicates] = #inserted, #news - late - over - #inserted
  r[R.last_update] = fmt_int(at)
  if #inserted == 0 and (fresh or (at == st.at and r[R.rebuilt] < 0 and not st.added
                                   and not st.seeding)) then
    return
  end
  if conf.long and not st.entered then st.entered, st.long = {}, conf.long end
  st.hset, st.hdel = {}, {}  -- aggregate fields the long and previous windows write (write())
  local at0 = not fresh and st.at or nil
  account(st, ws, inserted)
  advance(K, st, ws, at, SLIDE_MAX + #inserted)  -- windows keep up with what comes in
  if st.all_gone then st.mark = {} end
  if st.at < at or st.more then r[R.status], r[R.last_update] = BEHIND, fmt_int(st.at) end
  local entered = st.entered
  if st.sk then screener_step(st, ws) end
  -- previous windows (lib/prev.lua): with the screener's sets and the buckets' key
  if st.sk or conf.long then LONG.begin() end  -- per-token memos of lib/long.lua
  local lx = (conf.long or (st.sk and K[12] and conf.r)) and LONG.entries(entered)  -- parsed once
  local pv = st.sk and K[12] and conf.r and not conf.noprev and LONG.P.start(K, st, LONG.P.wins(ws, conf.long), conf.r,
                                          at0, lx, r[R.rebuilt] >= 0)
  local lsums
  if conf.long then
    lsums = LONG.step(K, st, conf.long, conf.r, at0, lx, r[R.rebuilt] >= 0, #inserted > 0,
                      st.at - ws[#ws].ms, pv and pv.keep, pv and pv.was_keep)
    st.entered = {}
  end
  if pv then
    if not conf.long then
      local L = ws[#ws].ms
      local left = not (#inserted > 0) and redis.call('PTTL', K[4])
      LONG.P.store(K, pv.xs, pv.keep, conf.r,
                 (type(left) == 'number' and left > 0) and left + L or 2 * L, pv.was_keep)
    end
    local vols = {}
    for i = 1, #ws do vols[i] = st.tot[i] end
    for i = 1, #(conf.long or {}) do vols[#ws + i] = lsums[i] end
    if pv.pm then  -- prev_makers (lib/pmakers.lua): its keys live as long as the buckets
      local L = conf.long and conf.long[#conf.long].ms or ws[#ws].ms
      LONG.M.step(K, pv, pv.pm, conf.r, st.at, #inserted > 0 and 2 * L or function()
        local left = redis.call('PTTL', K[4])
        return (type(left) == 'number' and left > 0) and left + L or L
      end)
    end
    LONG.P.write(K, st, pv, vols)
  end
  trim(K, st)
  if pv and pv.pm then LONG.M.mark(K, pv, st.at, st.n, conf.r) end  -- (after the trim: its length)
  ids_save(st.ids)
  -- the id index says whether the screener's sets are kept for the list (lib/ids.lua)
  if st.sk and st.n > 0 and not st.ids.screened then redis.call('HSET', K[5], 'S', '1')
  elseif not st.sk and st.ids.screened and st.n > 0 then redis.call('HDEL', K[5], 'S') end
  write(K, st, st.at, #inserted > 0, r[R.rebuilt] >= 0)
end

local out = {}
local per = #KEYS / (#ARGV - 4)
for t = 0, #ARGV - 5 do
  local K = {}
  for k = 1, per do K[k] = KEYS[per * t + k] end
  if per == 9 then K[12], K[13], K[14], K[7], K[8], K[9] = K[7], K[8], K[9], nil, nil, nil end
  local news, bad = PAT.news(ARGV[5 + t])
  reset_touched()
  local r = result(OK)
  local ok, err = pcall(apply_token, K, news, r)
  if not ok then
    local status, why = caught(err)
    r = result(status == CORRUPT and CORRUPT or FAILED, 'error: ' .. why)
  end
  r[R.unparsable] = bad
  if bad > 0 and r[R.detail] == '' then r[R.detail] = 'unparsable entries: ' .. bad end
  r[R.touched], r[R.scanned] = touched, scanned
  for _, v in ipairs(r) do out[#out + 1] = v end
end
return out
