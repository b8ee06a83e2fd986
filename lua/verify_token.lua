-- verify_token.lua: deep integrity check of one token (requirement 8.4).
-- apply_trades checks the stored state cheaply on every call (types, index
-- ranges, counts against the list); what it cannot see without reading the
-- whole list (an unparsable, misplaced or repeated element inside a window,
-- volumes or prices that disagree with the list) is checked here, off the hot
-- path: the janitor runs it on the quiet tokens it advances. A token found
-- corrupt has its indices hash deleted, so that the next apply_trades call
-- rebuilds the token from its list (and reports it); nothing else is touched.
--
-- A passed check is remembered in tradeagg:{A}:checked (String: the
-- last_update it passed at; TTL: what the token's keys have left), which
-- apply_trades deletes whenever it adds trades, rebuilds the token or adds a
-- window to it, and the retire command when it drops one. While it stands,
-- the full read is skipped: the calls since only slid the windows, the
-- engine's own steps from a checked state (cheap checks still run). Every
-- window the token carries is checked, not only the caller's.
--
-- KEYS: token:{A}:trades, token:{A}:indices, token:{A}:aggregates,
--       token:{A}:last_update, tradeagg:{A}:ids, tradeagg:{A}:checked
-- ARGV[1] windows "label:ms,label:ms,..." shortest first
-- ARGV[2] longest list to check (longer lists are skipped)
-- ARGV[3] "check", or "invalidate" (delete the indices and the memo unchecked)
-- Returns: {outcome, reason, touched}: outcome "ok" (checked, consistent),
--          "unchanged" (skipped: the memo stands), "skipped" (no state, or
--          longer than ARGV[2]), "corrupt" (reason says why) or
--          "invalidated"; touched = list elements read (lib/core.lua).
--@include lib/state.lua

if ARGV[3] == 'invalidate' then
  redis.call('DEL', KEYS[2], KEYS[6])
  return {'invalidated', '', 0}
end
local ws = parse_windows(ARGV[1])
local ok, st = pcall(load_state, KEYS, ws)
if not ok then  -- apply_trades rebuilds it on its next call
  return {'corrupt', select(2, caught(st)), touched}
end
if st == nil or st.n > tonumber(ARGV[2]) then return {'skipped', '', touched} end
if st.checked then return {'unchanged', '', touched} end
ws = st.ws

local function check()
  local raw = lrange(KEYS[1], 0, -1)
  local es = {}
  for i = 1, #raw do
    local e = parse(raw[i])
    if not e then return 'corrupt: unparsable list element at ' .. (i - 1) end
    if i > 1 and cmp(es[i - 1], e) >= 0 then
      return 'corrupt: list out of order or repeated at ' .. (i - 1)
    end
    es[i] = e
  end
  local fields = {}
  for _, w in ipairs(ws) do
    fields[#fields + 1] = w.volume; fields[#fields + 1] = w.open; fields[#fields + 1] = w.close
  end
  local agg = redis.call('HMGET', KEYS[3], unpack(fields))
  for i, w in ipairs(ws) do
    if st.idx[i] ~= nil then  -- not a window of ours the token does not carry yet
      local counted = state_of(es, {w}, st.at)
      local t = counted.tot[1]
      if counted.idx[1] ~= st.idx[i] or counted.e ~= st.e or not same_totals(t, st.tot[i]) then
        return 'corrupt: totals of ' .. w.label .. ' do not match the list'
      end
      local open, close = false, false
      if st.idx[i] < st.e then open = es[st.idx[i] + 1].price; close = es[st.e].price end
      if agg[3 * i - 2] ~= volume(t) or agg[3 * i - 1] ~= open or agg[3 * i] ~= close then
        return 'corrupt: stored metrics of ' .. w.label .. ' do not match the list'
      end
    end
  end
  return ''
end

local reason = check()
if reason ~= '' then
  redis.call('DEL', KEYS[2])
  return {'corrupt', reason, touched}
end
local ttl = redis.call('PTTL', KEYS[4])
if type(ttl) ~= 'number' or ttl <= 0 then ttl = ws[#ws].ms end
-- best effort: Redis at maxmemory refuses the SET, and the next pass checks again
redis.pcall('SET', KEYS[6], fmt_int(st.at), 'PX', ttl)
return {'ok', '', touched}
