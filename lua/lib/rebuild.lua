-- lib/rebuild.lua: the rebuild of a long list cut into calls of bounded work
-- (issue 11). A list longer than REBUILD_STEP is read REBUILD_STEP elements a
-- call, each element checked (parseable, after the one before it, id seen
-- once) and counted into the windows as of the instant the rebuild started;
-- the id index (lib/ids.lua) is rebuilt alongside, its keys recomputed from
-- the elements' ids. The windows are those the token carried when the rebuild
-- started (carried_windows, lib/state.lua: the caller's and every label of its
-- indices and aggregates) with their complete_from.
-- Between calls the cursor lives in the id index tradeagg:{A}:ids, under
-- fields starting with CURSOR (the index's own fields are "n", "N" and bucket
-- numbers): the index is what is being rebuilt, and until the last step it
-- holds fewer keys than the list, which fails load_state's check on every
-- apply (no check is added to the hot path). Meanwhile every apply of the
-- token only takes the next step and answers REBUILDING, applying none of its
-- trades (the engine calls again until done), so the list does not change
-- under the cursor; a changed length starts it again. The last step removes
-- the cursor, trims what left the longest window (LTRIM) and hands back the
-- state; the stored fields are written by the caller. The screener's sets
-- (lib/screener.lua), when kept, are emptied at the start and each step feeds
-- its elements inside the longest window: no step counts a whole window.
-- A list that turns out damaged (unparsable, out of order, an id twice) or
-- holds elements of earlier releases (ending with a digest: they are rewritten
-- without it, once per token) is rebuilt in one call by `rebuild`
-- (lib/state.lua), which repairs it: O(n).
--@include lib/state.lua

local REBUILD_STEP = 1000  -- list elements one call reads (~9 µs each at load ~6)
local CURSOR = '~rebuild'
local MAX_WINDOWS = 16     -- settings.parse_windows: at most 16 windows

local function cursor_fields()
  local f = {CURSOR, CURSOR .. ':ws', CURSOR .. ':cf', CURSOR .. ':prev'}
  for i = 1, MAX_WINDOWS do f[#f + 1] = CURSOR .. ':' .. i end
  return f
end

local function spec_of(ws)
  local parts = {}
  for i, w in ipairs(ws) do parts[i] = w.label .. ':' .. fmt_int(w.ms) end
  return table.concat(parts, ',')
end

local function totals_text(t, idx)
  return sfmt('%.0f %.0f %.0f %.0f %.0f %.0f %.0f', t.b, t.s, t.bh, t.bl, t.sh, t.sl, idx)
end

local function totals_from(s)
  local v = {}
  for x in string.gmatch(s, '%-?%d+') do v[#v + 1] = tonumber(x) end
  return {b = v[1], s = v[2], bh = v[3], bl = v[4], sh = v[5], sl = v[6]}, v[7]
end

-- complete_from of each window, as text ("-": complete), and back
local function cf_text(ws, cf)
  local parts = {}
  for i = 1, #ws do parts[i] = cf[i] and fmt_int(cf[i]) or '-' end
  return table.concat(parts, ',')
end

local function cf_from(s)
  local cf, i = {}, 0
  for x in string.gmatch(s or '', '[^,]+') do i = i + 1; cf[i] = tonumber(x) end
  return cf
end

-- The repairing rebuild, in one call, with the windows `ws` the stepwise one
-- counted for (the cursor is removed: the id index is built again).
local function repair(K, ws, at)
  redis.call('HDEL', K[5], unpack(cursor_fields()))
  return rebuild(K, ws, at)
end

-- One step of the rebuild of token K as of `at` (used when it starts), for
-- the caller's windows `conf` and those the token carries.
-- Returns the state and the elements dropped when done, nothing while steps remain.
local function rebuild_step(K, conf, at)
  for i = 1, 4 do
    local t = redis.call('TYPE', K[i])['ok']
    local want = (i == 1 and 'list') or (i == 4 and 'string') or 'hash'
    if t ~= want and t ~= 'none' then return rebuild(K, conf, at) end  -- the repairing rebuild
  end
  local n = redis.call('LLEN', K[1])
  local cur = redis.pcall('HMGET', K[5], CURSOR, CURSOR .. ':ws', CURSOR .. ':cf', CURSOR .. ':prev')
  if cur.err then cur = {} end  -- not a hash (an index of an earlier release): start
  local pos, prev, tot, idx, e = 0, nil, {}, {}, -1
  local ws, cf
  local saved = cur[1] and {}
  if saved then for x in string.gmatch(cur[1], '%-?%d+') do saved[#saved + 1] = tonumber(x) end end
  if saved and saved[2] == n and cur[2] then
    ws, cf = parse_windows(cur[2]), cf_from(cur[3])
    at, pos, e = saved[1], saved[3], saved[4]
    prev = cur[4] and parse(cur[4])
    local t = redis.call('HMGET', K[5], unpack(cursor_fields(), 5, 4 + #ws))
    for i = 1, #ws do tot[i], idx[i] = totals_from(t[i]) end
  else
    if n <= REBUILD_STEP then
      if cur[1] then redis.call('HDEL', K[5], unpack(cursor_fields())) end
      return rebuild(K, conf, at)  -- short: in one call, as it always was
    end
    -- (re)start: the id index is counted again from the list (UNLINK: a long
    -- index is freed by a background thread, not inside this call); the
    -- deep check's memo no longer stands
    ws, cf = carried_windows(K, conf, at)
    redis.call('UNLINK', K[5])
    if K[6] then redis.call('DEL', K[6]) end
    if K[7] then redis.call('UNLINK', K[7], K[8], K[9], K[10], K[11]) end  -- fed again per step
    for i = 1, #ws do tot[i], idx[i] = new_totals(), -1 end
  end
  local raw = lrange(K[1], pos, pos + REBUILD_STEP - 1)
  local longest = ws[#ws].ms
  local kept, fed = {}, {}
  for k = 1, #raw do
    local x = parse(raw[k])
    if not x or x.dg or (prev and cmp(prev, x) >= 0) then
      return repair(K, ws, at)  -- damaged, or of an earlier release: in one call
    end
    local p = pos + k - 1
    if x.ts > at - longest then kept[#kept + 1] = key_of(x) end  -- stays: in the id index
    if x.ts <= at and x.ts > at - longest then fed[#fed + 1] = x end  -- the screener's sets
    if x.ts <= at then
      for i, w in ipairs(ws) do
        if x.ts > at - w.ms then
          add(tot[i], x, 1)
          if idx[i] < 0 then idx[i] = p end
        end
      end
    elseif e < 0 then e = p end
    prev = x
  end
  local ix = ids_open(K[5], n)
  ids_fetch(ix, kept)
  local batch = {}
  for _, k in ipairs(kept) do
    if batch[k] or ids_has(ix, k) then return repair(K, ws, at) end  -- an id twice
    batch[k] = true
    ids_add(ix, k)
  end
  ids_save(ix)
  local sk = screener_keys(K)
  if sk then screener_feed(sk, fed) end  -- in list order: the deques take a few calls
  pos = pos + #raw
  if pos < n then
    local f = {CURSOR, sfmt('%.0f %.0f %.0f %.0f', at, n, pos, e), CURSOR .. ':ws', spec_of(ws),
               CURSOR .. ':cf', cf_text(ws, cf), CURSOR .. ':prev', prev.raw}
    local fields = cursor_fields()
    for i = 1, #ws do f[#f + 1] = fields[4 + i]; f[#f + 1] = totals_text(tot[i], idx[i]) end
    redis.call('HSET', K[5], unpack(f))
    local ttl = redis.call('PTTL', K[4])
    if type(ttl) ~= 'number' or ttl <= 0 then ttl = longest end
    redis.call('PEXPIRE', K[5], ttl)
    if sk then for i = 7, 11 do redis.call('PEXPIRE', K[i], ttl) end end
    return
  end
  redis.call('HDEL', K[5], unpack(cursor_fields()))
  if e < 0 then e = n end
  for i = 1, #ws do if idx[i] < 0 then idx[i] = e end end
  local drop = idx[#ws]  -- left the longest window (not in the id index): trimmed here, in C
  if drop >= n then redis.call('UNLINK', K[1]) elseif drop > 0 then redis.call('LTRIM', K[1], drop, -1) end
  for i = 1, #ws do idx[i] = idx[i] - drop end
  local st = {at = at, n = n - drop, e = e - drop, idx = idx, tot = tot, ws = ws, cf = cf,
              ids = ix, old = blank_old(ws, true), dirty = {}, mark = {}, old_mark = {},
              sk = sk, entered = sk and {}}
  if st.n > 0 then st.tail = prev end
  return st, 0
end
