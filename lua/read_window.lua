-- read_window.lua: a token's aggregates exactly as of an instant, read-only.
-- Starts from the stored state (as of last_update) and slides the windows
-- forward in memory to `at`; writes nothing.
--
-- KEYS: token:{A}:trades, token:{A}:indices, token:{A}:aggregates, token:{A}:last_update
-- ARGV[1] at, epoch ms, or "" for the token's last_update
-- ARGV[2] windows "label:ms,label:ms,..." shortest first
-- Returns: {"ok", at, last_update, reason|false, then per window its label
--           and METRICS in order (lib/windows.lua): buys, sells, buy_volume,
--           sell_volume, volume, open|false, close|false, price_change_pct|false}
--          {"unknown", at}            the token has no state
--          {"past", at, last_update}  at is earlier than last_update
--          {"rebuilding", at}         the stored state fails its checks and the
--                                     list is longer than REBUILD_STEP (or a
--                                     rebuild is under way, lib/rebuild.lua)
-- When the stored state fails its checks (damage, or windows configured
-- differently from the writer's), the windows are counted from the list's
-- trustworthy elements in memory instead, and reason says why; nothing is
-- written (the next apply, or the janitor, repairs the stored state). Only
-- lists of at most REBUILD_STEP elements are counted so: the work is bounded.
--@include lib/slide.lua
--@include lib/rebuild.lua

return guarded(function()
  local ws = parse_windows(ARGV[2])
  local ok, st = pcall(load_state, KEYS, ws)
  if not ok then
    local _, reason = caught(st)
    local n = redis.pcall('LLEN', KEYS[1])
    if type(n) == 'number' and n > REBUILD_STEP then return {'rebuilding', ARGV[1]} end
    local lu = tonumber(redis.pcall('GET', KEYS[4]))
    local es = trusted_entries(KEYS, false)
    local at = tonumber(ARGV[1]) or lu or (es[#es] and es[#es].ts) or 0
    if lu and at < lu then return {'past', fmt_int(at), fmt_int(lu)} end
    st = state_of(es, ws, at)
    st.at = lu or at
    local out = {'ok', fmt_int(at), fmt_int(st.at), reason}
    for _, v in ipairs(metrics(KEYS, st, ws, memory_prices(es))) do out[#out + 1] = v end
    return out
  end
  if st == nil then return {'unknown', ARGV[1]} end
  local at = tonumber(ARGV[1]) or st.at
  if at < st.at then return {'past', fmt_int(at), fmt_int(st.at)} end
  local lu = st.at
  advance(KEYS, st, ws, at)
  local out = {'ok', fmt_int(at), fmt_int(lu), false}
  for _, v in ipairs(metrics(KEYS, st, ws)) do out[#out + 1] = v end
  return out
end)
