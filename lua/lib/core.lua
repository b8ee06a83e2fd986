-- lib/core.lua: standard functions as locals (a local is a register, a global
-- a table lookup), the counter of list elements a call touches and the only
-- list accessors that read or write elements, so the counter is exact.
-- Touches no key itself: every key is one the operation passed in KEYS.
--@include lib/status.lua

local smatch, ssub, sbyte, sfmt = string.match, string.sub, string.byte, string.format
local tonumber, tostring, ipairs, unpack = tonumber, tostring, ipairs, unpack
local floor, min, max = math.floor, math.min, math.max

-- list elements read or written by Lua (LINDEX, LRANGE, RPUSH, LINSERT) since
-- the last reset, and elements LINSERT scanned in C to find its pivot
local touched, scanned = 0, 0
local function reset_touched() touched, scanned = 0, 0 end

local function lindex(key, i)
  touched = touched + 1
  return redis.call('LINDEX', key, i)
end

local function lrange(key, from, to)
  local r = redis.call('LRANGE', key, from, to)
  touched = touched + #r
  return r
end

-- Run a variadic command over `args` in chunks (Lua's unpack has a limit),
-- `flag` (e.g. ZADD's 'GT') after the key when given; with `out`, the replies
-- are appended to it. The usual case is one call, without a copy of `args`.
local ARGS_PER_CALL = 1000
local function chunked(cmd, key, args, out, flag)
  local n = #args
  for i = 1, max(n, 1), ARGS_PER_CALL do
    local part = args
    if n > ARGS_PER_CALL then
      part = {}
      for j = i, min(i + ARGS_PER_CALL - 1, n) do part[#part + 1] = args[j] end
    end
    local r
    if flag then r = redis.call(cmd, key, flag, unpack(part))
    else r = redis.call(cmd, key, unpack(part)) end
    if out then for _, v in ipairs(r) do out[#out + 1] = v end end
  end
  return out
end

-- append raw elements to a list
local function push(key, raws)
  touched = touched + #raws
  chunked('RPUSH', key, raws)
end

-- insert `raw` before the element `pivot`, which sits at index `at`
local function insert_before(key, pivot, at, raw)
  touched = touched + 1
  scanned = scanned + at + 1
  if redis.call('LINSERT', key, 'BEFORE', pivot, raw) < 0 then
    corrupt('list element at ' .. at .. ' vanished')
  end
end
