-- lib/windows.lua: the configured windows and the names of their fields.
-- ARGV form: "1m:60000,5m:300000,..." shortest first. A window's fields in
-- token:{A}:aggregates are "<label>:<metric>"; its index in token:{A}:indices
-- is "<label>". Field names are built once per call, not per token.
--@include lib/core.lua

-- the metrics of a window, in the order scripts return them (after the label)
local METRICS = {'buys', 'sells', 'buy_volume', 'sell_volume', 'volume', 'open', 'close',
                 'price_change_pct'}
-- the fields load_state reads back, per window, in this order
local LOADED = {'buys', 'sells', 'buy_volume', 'sell_volume', 'open', 'close'}

local function parse_windows(spec)
  local ws = {labels = {}, load = {}}
  for label, ms in string.gmatch(spec, '([^:,]+):(%d+)') do
    local w = {label = label, ms = tonumber(ms)}
    for _, m in ipairs(METRICS) do w[m] = label .. ':' .. m end
    ws[#ws + 1] = w
    ws.labels[#ws.labels + 1] = label
    for _, m in ipairs(LOADED) do ws.load[#ws.load + 1] = w[m] end
  end
  return ws
end

-- Delete the index and fields of windows that are no longer configured
-- (TRADEAGG_WINDOWS changed).
local function retire(K, ws)
  local keep = {}
  for _, w in ipairs(ws) do keep[w.label] = true end
  local gone, fields = {}, {}
  for _, label in ipairs(redis.call('HKEYS', K[2])) do
    if not keep[label] then
      gone[#gone + 1] = label
      for _, m in ipairs(METRICS) do fields[#fields + 1] = label .. ':' .. m end
    end
  end
  if #gone > 0 then
    redis.call('HDEL', K[2], unpack(gone))
    redis.call('HDEL', K[3], unpack(fields))
  end
end
