-- trim_stream.lua: trim a shard stream, never past an entry still needed.
-- An entry is still needed while some group has not delivered it (id above the
-- group's last-delivered-id) or some consumer holds it pending. Both are read
-- and the trim done in one atomic step, so no delivery can slip in between.
--
-- KEYS[1] the shard stream (tradeagg:{sN}:stream)
-- Returns: {entries removed, the MINID used or ""}

if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end

local function parse_id(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return {tonumber(ms), tonumber(seq), s}
end

local function lower(a, b)
  if not a then return b end
  if a[1] ~= b[1] then return (a[1] < b[1]) and a or b end
  return (a[2] <= b[2]) and a or b
end

local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {0, ''} end
local cut = nil
for _, g in ipairs(groups) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  cut = lower(cut, parse_id(last))
  local p = redis.call('XPENDING', KEYS[1], name)
  if tonumber(p[1]) > 0 and p[2] then cut = lower(cut, parse_id(p[2])) end
end
if cut[1] == 0 and cut[2] == 0 then return {0, cut[3]} end
return {redis.call('XTRIM', KEYS[1], 'MINID', cut[3]), cut[3]}
