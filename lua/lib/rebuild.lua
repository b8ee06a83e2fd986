-- lib/rebuild.lua: the rebuild of a long list cut into calls of bounded work
-- (issue 11). A list longer than REBUILD_STEP is read REBUILD_STEP elements a
-- call, each element checked (parseable, after the one before it, id seen
-- once) and counted into the windows as of the instant the rebuild started.
-- Between calls the cursor lives in token:{A}:indices under fields starting
-- with CURSOR ('~' starts no window label); while it is there every apply of
-- the token only takes the next step and answers REBUILDING, applying none of
-- its trades (the engine calls again until done), so the list does not change
-- under the cursor. No check is added to the hot path: until the last step the
-- id index holds fewer digests than the list, which fails load_state's checks. The last step trims what left the longest window (LTRIM)
-- and hands back the state; the stored fields are written by the caller.
-- A list that turns out damaged (unparsable, out of order, an id twice) is
-- rebuilt in one call by `rebuild` (lib/state.lua), which repairs it: O(n).
--@include lib/state.lua

local REBUILD_STEP = 1000  -- list elements one call reads (~3 µs each unloaded)
local CURSOR = '~rebuild'
local MAX_WINDOWS = 16     -- settings.parse_windows: at most 16 windows

local function cursor_fields()
  local f = {CURSOR, CURSOR .. ':ws', CURSOR .. ':prev'}
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

-- SADD digests in chunks; the number that were new
local function sadd_count(key, dgs)
  local added = 0
  for i = 1, #dgs, ARGS_PER_CALL do
    local part = {}
    for j = i, min(i + ARGS_PER_CALL - 1, #dgs) do part[#part + 1] = dgs[j] end
    added = added + redis.call('SADD', key, unpack(part))
  end
  return added
end

-- One step of the rebuild of token K as of `at` (used when it starts).
-- Returns the state and the elements dropped when done, nothing while steps remain.
local function rebuild_step(K, ws, at)
  local fields = cursor_fields()
  local typ = redis.call('TYPE', K[1])['ok']
  local htyp = redis.call('TYPE', K[2])['ok']
  if (typ ~= 'list' and typ ~= 'none') or (htyp ~= 'hash' and htyp ~= 'none') then
    return rebuild(K, ws, at)  -- keys of a wrong type: the repairing rebuild
  end
  local n = redis.call('LLEN', K[1])
  local cur = redis.call('HMGET', K[2], CURSOR, CURSOR .. ':ws', CURSOR .. ':prev')
  local spec = spec_of(ws)
  local pos, prev, tot, idx, e = 0, nil, {}, {}, -1
  local saved = cur[1] and {}
  if saved then for x in string.gmatch(cur[1], '%-?%d+') do saved[#saved + 1] = tonumber(x) end end
  if saved and saved[2] == n and cur[2] == spec then
    at, pos, e = saved[1], saved[3], saved[4]
    prev = cur[3] and parse(cur[3])
    local t = redis.call('HMGET', K[2], unpack(fields, 4, 3 + #ws))
    for i = 1, #ws do tot[i], idx[i] = totals_from(t[i]) end
  else
    if n <= REBUILD_STEP then
      if cur[1] then redis.call('HDEL', K[2], unpack(fields)) end
      return rebuild(K, ws, at)  -- short: in one call, as it always was
    end
    -- (re)start: the id index is counted again from the list (UNLINK: a long
    -- set is freed by a background thread, not inside this call)
    redis.call('UNLINK', K[5])
    for i = 1, #ws do tot[i], idx[i] = new_totals(), -1 end
    local ttl = redis.call('PTTL', K[4])
    if type(ttl) ~= 'number' or ttl <= 0 then ttl = ws[#ws].ms end
    redis.call('HDEL', K[2], unpack(fields))
    redis.call('HSET', K[2], CURSOR, '')
    redis.call('PEXPIRE', K[2], ttl)
  end
  local raw = lrange(K[1], pos, pos + REBUILD_STEP - 1)
  local longest = ws[#ws].ms
  local dgs = {}
  for k = 1, #raw do
    local x = parse(raw[k])
    if not x or not x.dg or (prev and cmp(prev, x) >= 0) then
      redis.call('HDEL', K[2], unpack(fields))
      return rebuild(K, ws, at)  -- damaged: the repairing rebuild, in one call
    end
    local p = pos + k - 1
    if x.ts > at - longest then dgs[#dgs + 1] = x.dg end  -- kept: in the id index
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
  if sadd_count(K[5], dgs) ~= #dgs then
    redis.call('HDEL', K[2], unpack(fields))
    return rebuild(K, ws, at)  -- an id twice: the repairing rebuild drops the repeat
  end
  pos = pos + #raw
  if pos < n then
    local f = {CURSOR, sfmt('%.0f %.0f %.0f %.0f', at, n, pos, e), CURSOR .. ':ws', spec,
               CURSOR .. ':prev', prev.raw}
    for i = 1, #ws do f[#f + 1] = fields[3 + i]; f[#f + 1] = totals_text(tot[i], idx[i]) end
    redis.call('HSET', K[2], unpack(f))
    return
  end
  redis.call('HDEL', K[2], unpack(fields))
  if e < 0 then e = n end
  for i = 1, #ws do if idx[i] < 0 then idx[i] = e end end
  local drop = idx[#ws]  -- left the longest window: trimmed here, in C
  if drop >= n then redis.call('UNLINK', K[1]) elseif drop > 0 then redis.call('LTRIM', K[1], drop, -1) end
  for i = 1, #ws do idx[i] = idx[i] - drop end
  local st = {at = at, n = n - drop, e = e - drop, idx = idx, tot = tot,
              old = blank_old(ws, true), dirty = {}}
  if st.n > 0 then st.tail = prev end
  return st, 0
end
