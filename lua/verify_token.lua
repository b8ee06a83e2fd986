-- verify_token.lua: deep integrity check of one token (requirement 8.4).
-- apply_trades checks the stored state cheaply on every call (types, index
-- ranges, counts against the list); what it cannot see without reading the
-- whole list (an unparsable, misplaced or repeated element inside a window,
-- volumes or prices that disagree with the list) is checked here, off the hot
-- path: the janitor runs it on the quiet tokens it advances. A token found
-- corrupt has its indices hash deleted, so that the next apply_trades call
-- rebuilds the token from its list (and reports it); nothing else is touched.
--
-- KEYS: token:{A}:trades, token:{A}:indices, token:{A}:aggregates, token:{A}:last_update
-- ARGV[1] windows "label:ms,label:ms,..." shortest first
-- ARGV[2] longest list to check (longer lists are skipped: "")
-- ARGV[3] "check", or "invalidate" (delete the indices without checking)
-- Returns: "" if consistent, skipped or without state; else the reason found.
--@include lib/state.lua

if ARGV[3] == 'invalidate' then
  redis.call('DEL', KEYS[2])
  return 'invalidated'
end
local ws = parse_windows(ARGV[1])
local ok, st = pcall(load_state, KEYS, ws)
if not ok then return select(2, caught(st)) end -- apply_trades rebuilds it on its next call
if st == nil or st.n > tonumber(ARGV[2]) then return '' end

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
  return ''
end

local reason = check()
if reason ~= '' then redis.call('DEL', KEYS[2]) end
return reason
