-- lib/status.lua: what a token's apply returns, in an order defined once.
-- Mirrored by ApplyStatus and RawResult in tradeagg/engine/apply.py (a unit
-- test compares the two). Failures are raised as {status=, msg=} tables, so
-- the caller decides by number, never by matching the message (not `err`:
-- Redis turns a table with `err` into its string inside pcall).

-- statuses
local OK = 0          -- applied (or nothing to do)
local REBUILT = 1     -- the stored state failed its checks and was rebuilt from the list
local CORRUPT = 2     -- damage met mid-apply: the token failed (writes before it stand;
                      -- the engine invalidates the token so its next apply rebuilds it)
local FAILED = 3      -- any other error: the token failed
local BEHIND = 4      -- applied, but the windows moved only part of the way to the instant
                      -- (work per call is bounded, lib/slide.lua): call again to go on
local REBUILDING = 5  -- a step of a long rebuild was taken (lib/rebuild.lua); no trade was
                      -- applied: call again with the same trades until it answers otherwise

-- fields of a token's result, 1-based positions
local R = {status = 1, applied = 2, duplicates = 3, late = 4, over_capacity = 5,
           rebuilt = 6, unparsable = 7, last_update = 8, touched = 9, scanned = 10,
           detail = 11}
local R_FIELDS = 11

local function result(status, detail)
  local r = {}
  for i = 1, R_FIELDS do r[i] = 0 end
  r[R.status] = status; r[R.rebuilt] = -1; r[R.last_update] = ''; r[R.detail] = detail or ''
  return r
end

-- raise a typed failure; a script lets none escape uncaught (see guarded)
local function fail(status, detail) error({status = status, msg = detail}, 0) end
local function corrupt(detail) fail(CORRUPT, 'corrupt: ' .. detail) end

-- status and message of an error caught by pcall
local function caught(e)
  if type(e) == 'table' then return e.status or FAILED, tostring(e.msg or e.err) end
  return FAILED, tostring(e)
end

-- fn()'s value, or its failure as an error reply carrying the message
local function guarded(fn)
  local ok, r = pcall(fn)
  if ok then return r end
  local _, msg = caught(r)
  return redis.error_reply(msg)
end
