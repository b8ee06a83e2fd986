-- retire_windows.lua: drop windows from one token (`tradeagg windows retire`).
-- A token keeps every window any release configured (apply_trades.lua); this
-- is the one place windows leave it. Deletes the retired labels' index and
-- fields (a bucketed window's fields: lib/long.lua), then trims the list to
-- the longest exact window left, at most ARGV[2]
-- elements per call (their keys leave the id index too); the caller calls
-- again while `left` > 0. Between calls the token is consistent and readable
-- (an untrimmed head is what a list holds before any trim). A token carrying
-- only retired windows is left as it is (`kept`): it has no window to keep.
--
-- KEYS: token:{A}:trades, token:{A}:indices, token:{A}:aggregates,
--       token:{A}:last_update, tradeagg:{A}:ids, tradeagg:{A}:checked, then
--       optionally tradeagg:{A}:pmakers, tradeagg:{A}:ptraders (lib/pmakers.lua:
--       the trim is no change of what it counts, which was fed as trades entered;
--       its marker's list length follows the trim, so that it stays trusted)
-- ARGV[1] labels to retire, comma-separated
-- ARGV[2] most list elements to trim in this call (>= 1)
-- Returns: {retired (labels removed now, exact and bucketed), dropped (elements trimmed now),
--           left (elements still to trim), kept (1: only retired windows)}
--@include lib/entry.lua
--@include lib/windows.lua
--@include lib/ids.lua

return guarded(function()
  local most = tonumber(ARGV[2])
  if not most or most < 1 then fail(FAILED, 'ARGV[2] must be at least 1') end
  if redis.call('EXISTS', KEYS[4]) == 0 then return {0, 0, 0, 0} end
  local gone = {}
  for label in string.gmatch(ARGV[1], '[^,]+') do gone[label] = true end
  local retire, longest, at = {}, nil, nil
  for _, label in ipairs(redis.call('HKEYS', KEYS[2])) do
    if gone[label] then retire[#retire + 1] = label
    else
      local ms = label_ms(label)
      if not ms then corrupt('unknown window label ' .. label) end
      if not longest or ms > longest then longest, at = ms, label end
    end
  end
  if not longest then return {0, 0, 0, #retire > 0 and 1 or 0} end
  -- bucketed (long) windows (lib/long.lua) have no index: their `L:from` field says
  -- they are carried; their fields go (the buckets stay for the windows left and the
  -- previous windows, and expire with the token)
  local long = {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do
    local label = smatch(f, '^(.-):from$')
    if label and gone[label] then long[#long + 1] = label end
  end
  if #retire > 0 or #long > 0 then
    local fields = {}
    for _, label in ipairs(retire) do
      for _, m in ipairs(OWNED) do fields[#fields + 1] = label .. ':' .. m end
    end
    for _, label in ipairs(long) do
      for _, m in ipairs(OWNED) do fields[#fields + 1] = label .. ':' .. m end
      fields[#fields + 1] = label .. ':from'; fields[#fields + 1] = label .. ':at'
    end
    local marks = {}  -- their seeding marks (lib/state.lua), if any
    for i, label in ipairs(retire) do marks[i] = '~seed:' .. label end
    if #retire > 0 then redis.call('HDEL', KEYS[2], unpack(retire)) end
    redis.call('HDEL', KEYS[3], unpack(fields))
    if #marks > 0 and redis.call('TYPE', KEYS[5])['ok'] == 'hash' then
      redis.call('HDEL', KEYS[5], unpack(marks))
    end
    redis.call('DEL', KEYS[6])  -- the memo: the token changed shape
  end
  -- the head before the longest window left: outside every window it keeps
  local start = tonumber(redis.call('HGET', KEYS[2], at))
  if not start or start < 0 or start ~= floor(start) then
    corrupt('index of ' .. at .. ' is ' .. tostring(start))
  end
  local drop = min(start, most)
  if drop > 0 then
    local ix = ids_open(KEYS[5], redis.call('LLEN', KEYS[1]))
    local ks = {}
    for j, raw in ipairs(lrange(KEYS[1], 0, drop - 1)) do ks[j] = key_of_raw(raw) end
    ids_fetch(ix, ks)
    for _, k in ipairs(ks) do ids_remove(ix, k) end
    local idx = {}
    local labels = redis.call('HKEYS', KEYS[2])
    local was = redis.call('HMGET', KEYS[2], unpack(labels))
    for i, label in ipairs(labels) do
      local x = tonumber(was[i])
      if not x or x < drop then corrupt('index of ' .. label .. ' is ' .. tostring(was[i])) end
      idx[#idx + 1] = label; idx[#idx + 1] = fmt_int(x - drop)
    end
    -- the writes Redis may refuse (at maxmemory) come first: a refusal leaves the list
    -- whole, and an id index or indices that no longer match it fail the next apply's
    -- checks, which rebuilds the token from its list; the LTRIM after them is always allowed
    ids_save(ix)
    redis.call('HSET', KEYS[2], unpack(idx))
    local len = redis.call('LLEN', KEYS[1])
    redis.call('LTRIM', KEYS[1], drop, -1)
    if KEYS[8] then
      local m = redis.call('HGET', KEYS[8], '~')
      -- (the marker's first two fields, as LONG.M.marker writes them: at, list length)
      local mat, mn, rest = smatch(m or '', '^(%-?%d+) (%d+) (.*)$')
      if mat and tonumber(mn) == len then
        redis.call('HSET', KEYS[8], '~', mat .. ' ' .. fmt_int(len - drop) .. ' ' .. rest)
      end
    end
    -- a window left that was being seeded lost what preceded its index: the list
    -- now covers only what it counts (its mark's C becomes its boundary B)
    local mark = redis.pcall('HGET', KEYS[5], '~seed:' .. at)
    local b = type(mark) == 'string' and smatch(mark, '^(%-?%d+) ')
    if b then redis.call('HSET', KEYS[5], '~seed:' .. at, b .. ' ' .. b) end
  end
  return {#retire + #long, drop, start - drop, 0}
end)
