-- lib/windows.lua: the windows of a call and the names of their fields.
-- ARGV form: "1m:60000,5m:300000,..." shortest first. A window's fields in
-- token:{A}:aggregates are "<label>:<metric>" (and "<label>:complete_from"
-- while it is partial); its index in token:{A}:indices is "<label>". Field
-- names are built once per call, and again only for a token carrying windows
-- the caller does not configure (see union).
--@include lib/core.lua

-- the metrics of a window, in the order scripts return them (after the label)
-- (the last five, the screener's, only with its keys: lib/screener.lua)
local METRICS = {'buys', 'sells', 'buy_volume', 'sell_volume', 'volume', 'open', 'close',
                 'price_change_pct', 'makers', 'buyers', 'sellers', 'high', 'low'}
local SEED_METRICS = 8  -- METRICS without the screener's
-- the fields load_state reads back, per window, in this order (complete_from
-- apart, only when some window is partial: lib/state.lua); a call without the
-- screener's keys reads the first `seed` only (ws.load_seed; ws.load with them:
-- built at their first use in a script call): an absent field costs HMGET a
-- scan of the whole hash
local LOADED = {'buys', 'sells', 'buy_volume', 'sell_volume', 'open', 'close',
                'makers', 'buyers', 'sellers', 'high', 'low', seed = 6}
-- every field a window may own in the aggregates hash
local OWNED = {'buys', 'sells', 'buy_volume', 'sell_volume', 'volume', 'open', 'close',
               'price_change_pct', 'complete_from', 'makers', 'buyers', 'sellers', 'high', 'low',
               'prev_buys', 'prev_sells', 'prev_volume', 'prev_from', 'volume_change_pct',
               'prev_complete_from', 'prev_makers'}  -- the last seven: lib/prev.lua's

-- The length in ms of a window label ("30s", "5m", "4h", "1d"), or nil: the
-- one parser of labels in Lua, the same rule as parse_windows in
-- tradeagg/settings.py (1 to 7 digits, no leading zero, then ms|s|m|h|d).
local UNIT_MS = {ms = 1, s = 1000, m = 60000, h = 3600000, d = 86400000}
local function label_ms(label)
  local digits, unit = smatch(label, '^([1-9]%d*)(%a+)$')
  if not digits or #digits > 7 or not UNIT_MS[unit] then return nil end
  return tonumber(digits) * UNIT_MS[unit]
end

-- windows from {label, ms} pairs sorted shortest first (ties by label); a
-- window holds its field names, w[m] for m in OWNED. Every call of a script
-- builds them (parse_windows) before its first token: one table constructor
-- per window, sized at once, not a table grown field by field (~2x the time of
-- the names themselves); test_lua_scripts checks it names OWNED exactly.
local function windows_of(pairs)
  table.sort(pairs, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  local ws = {labels = {}, has = {}}
  for j, p in ipairs(pairs) do
    local label = p[1]
    local f = label .. ':'
    ws[j] = {label = label, ms = p[2],
      buys = f .. 'buys', sells = f .. 'sells', buy_volume = f .. 'buy_volume',
      sell_volume = f .. 'sell_volume', volume = f .. 'volume', open = f .. 'open',
      close = f .. 'close', price_change_pct = f .. 'price_change_pct',
      complete_from = f .. 'complete_from', makers = f .. 'makers', buyers = f .. 'buyers',
      sellers = f .. 'sellers', high = f .. 'high', low = f .. 'low',
      prev_buys = f .. 'prev_buys', prev_sells = f .. 'prev_sells',
      prev_volume = f .. 'prev_volume', prev_from = f .. 'prev_from',
      volume_change_pct = f .. 'volume_change_pct',
      prev_complete_from = f .. 'prev_complete_from', prev_makers = f .. 'prev_makers'}
    ws.labels[j] = label
    ws.has[label] = true
  end
  return ws
end

-- "exact|long;r" (lib/long.lua): the exact windows, then, when any, the long
-- (bucketed) windows and their resolution r in ms: ws.long (windows as above),
-- ws.r, and ws.long_spec (the text after the exact windows, to pass on); a
-- trailing ";-" (ws.noprev): the previous windows (lib/prev.lua) are turned off,
-- kept by no call and deleted where an earlier setting kept them
local function parse_windows(spec)
  local pairs, ex, lg, r, off = {}, smatch(spec, '^([^|]*)|?([^;]*);?(%d*);?(%-?)$')
  for label, ms in string.gmatch(ex, '([^:,]+):(%d+)') do pairs[#pairs + 1] = {label, tonumber(ms)} end
  local ws = windows_of(pairs)
  if lg ~= '' then
    local lp = {}
    for label, ms in string.gmatch(lg, '([^:,]+):(%d+)') do lp[#lp + 1] = {label, tonumber(ms)} end
    ws.long = windows_of(lp)
  end
  -- r comes alone ("exact|;r") when only the previous windows need it (lib/prev.lua)
  if r ~= '' then ws.r, ws.long_spec = tonumber(r), '|' .. lg .. ';' .. r .. (off ~= '' and ';-' or '') end
  ws.noprev = off ~= ''
  return ws
end

-- The windows a call keeps on a token: the caller's `ws` and every label in
-- `stored` (the token's indices hash, or labels found in its aggregates).
-- Nothing is retired implicitly: releases configured with other windows
-- share a token (retiring is the `tradeagg windows retire` command's job).
-- Labels that do not parse are left out (`bad` is the first such, or nil), and
-- so are the caller's long windows (an exact window of an earlier release that
-- the caller buckets: lib/long.lua counts it, partial at first).
local function union(ws, stored)
  local extra, bad = nil, nil
  for _, label in ipairs(stored) do
    if not ws.has[label] and not (extra and extra.has[label])
       and not (ws.long and ws.long.has[label]) then
      local ms = label_ms(label)
      if not ms then bad = bad or label
      else
        extra = extra or {has = {}}
        extra[#extra + 1] = {label, ms}; extra.has[label] = true
      end
    end
  end
  if not extra then return ws, bad end
  local pairs = {}
  for _, w in ipairs(ws) do pairs[#pairs + 1] = {w.label, w.ms} end
  for _, p in ipairs(extra) do pairs[#pairs + 1] = p end
  return windows_of(pairs), bad
end

-- Delete the indices of labels a rebuild could not use (they do not parse)
-- and their fields: every usable label is in `ws` (the union).
local function retire(K, ws)
  local gone, fields = {}, {}
  for _, label in ipairs(redis.call('HKEYS', K[2])) do
    if not ws.has[label] then
      gone[#gone + 1] = label
      for _, m in ipairs(OWNED) do fields[#fields + 1] = label .. ':' .. m end
    end
  end
  if #gone > 0 then
    redis.call('HDEL', K[2], unpack(gone))
    redis.call('HDEL', K[3], unpack(fields))
  end
end
