-- verify_token.lua: deep integrity check of one token (requirement 8.4).
-- apply_trades checks the stored state cheaply on every call (types, index
-- ranges, counts against the list); what it cannot see without reading the
-- whole list (an unparsable, misplaced or repeated element inside a window,
-- volumes or prices that disagree with the list) is checked here, off the hot
-- path: the janitor runs it on the quiet tokens it advances. A token found
-- corrupt has its indices hash deleted, so that the next apply_trades call
-- rebuilds the token from its list (and reports it); nothing else is touched.
--
-- A list longer than ARGV[2] is checked in steps of ARGV[2] elements (issue 11:
-- bounded work per call), the caller carrying the cursor from step to step.
--
-- KEYS: token:{A}:trades, token:{A}:indices, token:{A}:aggregates, token:{A}:last_update
-- ARGV[1] windows "label:ms,label:ms,..." shortest first
-- ARGV[2] longest list checked in one call; the most elements a step reads
-- ARGV[3] "check", "invalidate" (delete the indices without checking), or
--         "step": one part of the check of a longer list, with
-- ARGV[4] (step) the first list index to read (0 at first)
-- ARGV[5] (step) the fingerprint the first step answered ("" at first)
-- ARGV[6] (step) the list element before ARGV[4] ("" at first)
-- ARGV[7] (step) the windows' sums so far, as the last step answered ("" at first)
-- Returns: check, invalidate: "" if consistent or without state, "~long" if the
--          list is longer than ARGV[2] (check it by steps); else the reason found.
--          step: {reason, next, fingerprint, last element, sums}: call again
--          with them while next >= 0; next = -1: done (reason "" if consistent),
--          or the token changed since the first step (fingerprint differs: "").
--@include lib/state.lua
--@include lib/rebuild.lua

if ARGV[3] == 'invalidate' then
  redis.call('DEL', KEYS[2])
  return 'invalidated'
end
local ws = parse_windows(ARGV[1])
local ok, st = pcall(load_state, KEYS, ws)
if not ok then return select(2, caught(st)) end -- apply_trades rebuilds it on its next call
if st == nil then
  if ARGV[3] == 'step' then return {'', -1, '', '', ''} end
  return ''
end
local STEP = tonumber(ARGV[2])
if ARGV[3] == 'check' and st.n > STEP then return '~long' end

-- the stored metrics of every window: volume, open, close
local function stored()
  local fields = {}
  for _, w in ipairs(ws) do
    fields[#fields + 1] = w.volume; fields[#fields + 1] = w.open; fields[#fields + 1] = w.close
  end
  return redis.call('HMGET', KEYS[3], unpack(fields))
end

-- One step: elements [from, from + STEP) read, each checked (parseable, after the
-- one before, inside exactly the windows its index says) and added to the sums;
-- after the last one the sums and stored prices are compared with the state.
local function step()
  local from = tonumber(ARGV[4])
  if st.n <= from then return {'', -1, '', '', ''} end  -- trimmed meanwhile: another pass
  local fp = sfmt('%.0f %.0f %s %s', st.at, st.n, digest_of(lindex(KEYS[1], 0)), digest_of(st.tail.raw))
  if ARGV[5] ~= '' and ARGV[5] ~= fp then return {'', -1, fp, '', ''} end
  local prev = ARGV[6] ~= '' and parse(ARGV[6]) or nil
  local sums, i = {}, 0
  for part in string.gmatch(ARGV[7], '[^,]+') do i = i + 1; sums[i] = totals_from(part) end
  for j = 1, #ws do sums[j] = sums[j] or new_totals() end
  local function bad(why) return {'corrupt: ' .. why, -1, fp, '', ''} end
  local raw = lrange(KEYS[1], from, from + STEP - 1)
  for k = 1, #raw do
    local p = from + k - 1
    local e = parse(raw[k])
    if not e then return bad('unparsable list element at ' .. p) end
    if prev and cmp(prev, e) >= 0 then return bad('list out of order or repeated at ' .. p) end
    for j, w in ipairs(ws) do
      local inside = p >= st.idx[j] and p < st.e
      if inside ~= (e.ts > st.at - w.ms and e.ts <= st.at) then
        return bad('totals of ' .. w.label .. ' do not match the list')
      end
      if inside then add(sums[j], e, 1) end
    end
    prev = e
  end
  local nxt = from + #raw
  if nxt < st.n then
    local text = {}
    for j = 1, #ws do text[j] = totals_text(sums[j], 0) end
    return {'', nxt, fp, prev.raw, table.concat(text, ',')}
  end
  local agg = stored()
  for j, w in ipairs(ws) do
    if not same_totals(sums[j], st.tot[j]) then return bad('totals of ' .. w.label .. ' do not match the list') end
    local open, close = false, false
    if st.idx[j] < st.e then open = price_at(KEYS[1], st.idx[j]); close = price_at(KEYS[1], st.e - 1) end
    if agg[3 * j - 2] ~= volume(sums[j]) or agg[3 * j - 1] ~= open or agg[3 * j] ~= close then
      return bad('stored metrics of ' .. w.label .. ' do not match the list')
    end
  end
  return {'', -1, fp, '', ''}
end

if ARGV[3] == 'step' then
  local ok, out = pcall(step)
  if not ok then
    local status, why = caught(out)
    out = {status == CORRUPT and why or '', -1, '', '', ''}
  end
  if out[1] ~= '' then redis.call('DEL', KEYS[2]) end
  return out
end

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
