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
-- A list longer than ARGV[2] is checked in steps of ARGV[2] elements (issue 11:
-- bounded work per call), the caller carrying the cursor from step to step;
-- the memo is read before any step (a standing memo skips them all) and set
-- by the last step when the check passed.
--
-- KEYS: token:{A}:trades, token:{A}:indices, token:{A}:aggregates,
--       token:{A}:last_update, tradeagg:{A}:ids, tradeagg:{A}:checked
-- ARGV[1] windows "label:ms,label:ms,..." shortest first
-- ARGV[2] longest list checked in one call; the most elements a step reads
-- ARGV[3] "check", "invalidate" (delete the indices and the memo unchecked),
--         or "step": one part of the check of a longer list, with
-- ARGV[4] (step) the first list index to read (0 at first)
-- ARGV[5] (step) the fingerprint the first step answered ("" at first)
-- ARGV[6] (step) the list element before ARGV[4] ("" at first)
-- ARGV[7] (step) the windows' sums so far, as the last step answered ("" at first)
-- Returns: check, invalidate: {outcome, reason, touched}: outcome "ok"
--          (checked, consistent), "unchanged" (skipped: the memo stands),
--          "skipped" (no state), "long" (longer than ARGV[2]: check it by
--          steps), "corrupt" (reason says why) or "invalidated"; touched =
--          list elements read (lib/core.lua).
--          step: {outcome, reason, touched, next, fingerprint, last element,
--          sums}: outcome "partial" with next >= 0: call again with them;
--          else next = -1 and outcome as for check ("skipped" also when the
--          token changed since the first step: its fingerprint differs).
--@include lib/state.lua
--@include lib/rebuild.lua

if ARGV[3] == 'invalidate' then
  redis.call('DEL', KEYS[2], KEYS[6])
  return {'invalidated', '', 0}
end
local ws = parse_windows(ARGV[1])
local ok, st = pcall(load_state, KEYS, ws)
if not ok then  -- apply_trades rebuilds it on its next call
  local why = select(2, caught(st))
  if ARGV[3] == 'step' then return {'corrupt', why, touched, -1, '', '', ''} end
  return {'corrupt', why, touched}
end
local STEP = tonumber(ARGV[2])
if st == nil then
  if ARGV[3] == 'step' then return {'skipped', '', touched, -1, '', '', ''} end
  return {'skipped', '', touched}
end
if st.checked then
  if ARGV[3] == 'step' then return {'unchanged', '', touched, -1, '', '', ''} end
  return {'unchanged', '', touched}
end
ws = st.ws
if ARGV[3] == 'check' and st.n > STEP then return {'long', '', touched} end

-- the stored metrics of every window: volume, open, close
local function stored_metrics()
  local fields = {}
  for _, w in ipairs(ws) do
    fields[#fields + 1] = w.volume; fields[#fields + 1] = w.open; fields[#fields + 1] = w.close
  end
  return redis.call('HMGET', KEYS[3], unpack(fields))
end

-- remember a passed check (best effort: Redis at maxmemory refuses the SET,
-- and the next pass checks again)
local function remember()
  local ttl = redis.call('PTTL', KEYS[4])
  if type(ttl) ~= 'number' or ttl <= 0 then ttl = ws[#ws].ms end
  redis.pcall('SET', KEYS[6], fmt_int(st.at), 'PX', ttl)
end

-- where window j's count starts: its start, or a seeding mark's boundary
local function lower(j, w)
  return st.mark[j] and st.mark[j][1] or st.at - w.ms
end

-- One step: elements [from, from + STEP) read, each checked (parseable, after the
-- one before, inside exactly the windows its index says) and added to the sums;
-- after the last one the sums and stored prices are compared with the state.
-- Windows of the caller the token does not carry yet are not checked.
local function step()
  local from = tonumber(ARGV[4])
  local function done(outcome, why) return {outcome, why, touched, -1, '', '', ''} end
  if st.n <= from then return done('skipped', '') end  -- trimmed meanwhile: another pass
  local fp = redis.sha1hex(sfmt('%.0f %.0f %s %s %s', st.at, st.n, lindex(KEYS[1], 0),
                                st.tail.raw, table.concat(ws.labels, ',')))
  if ARGV[5] ~= '' and ARGV[5] ~= fp then return done('skipped', '') end
  local prev = ARGV[6] ~= '' and parse(ARGV[6]) or nil
  local sums, i = {}, 0
  for part in string.gmatch(ARGV[7], '[^,]+') do i = i + 1; sums[i] = totals_from(part) end
  for j = 1, #ws do sums[j] = sums[j] or new_totals() end
  local function bad(why) return done('corrupt', 'corrupt: ' .. why) end
  local raw = lrange(KEYS[1], from, from + STEP - 1)
  for k = 1, #raw do
    local p = from + k - 1
    local e = parse(raw[k])
    if not e then return bad('unparsable list element at ' .. p) end
    if prev and cmp(prev, e) >= 0 then return bad('list out of order or repeated at ' .. p) end
    for j, w in ipairs(ws) do
      if st.idx[j] ~= nil then
        local inside = p >= st.idx[j] and p < st.e
        if inside ~= (e.ts > lower(j, w) and e.ts <= st.at) then
          return bad('totals of ' .. w.label .. ' do not match the list')
        end
        if inside then add(sums[j], e, 1) end
      end
    end
    prev = e
  end
  local nxt = from + #raw
  if nxt < st.n then
    local text = {}
    for j = 1, #ws do text[j] = totals_text(sums[j], 0) end
    return {'partial', '', touched, nxt, fp, prev.raw, table.concat(text, ',')}
  end
  local agg = stored_metrics()
  for j, w in ipairs(ws) do
    if st.idx[j] ~= nil then
      if not same_totals(sums[j], st.tot[j]) then
        return bad('totals of ' .. w.label .. ' do not match the list')
      end
      local open, close = false, false
      if st.idx[j] < st.e then open = price_at(KEYS[1], st.idx[j]); close = price_at(KEYS[1], st.e - 1) end
      if agg[3 * j - 2] ~= volume(sums[j]) or agg[3 * j - 1] ~= open or agg[3 * j] ~= close then
        return bad('stored metrics of ' .. w.label .. ' do not match the list')
      end
    end
  end
  remember()
  return done('ok', '')
end

if ARGV[3] == 'step' then
  local fine, out = pcall(step)
  if not fine then
    local status, why = caught(out)
    if status ~= CORRUPT then error(out) end
    out = {'corrupt', why, touched, -1, '', '', ''}
  end
  if out[1] == 'corrupt' then redis.call('DEL', KEYS[2]) end
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
  local agg = stored_metrics()
  for i, w in ipairs(ws) do
    if st.idx[i] ~= nil then  -- not a window of ours the token does not carry yet
      local counted = state_of(es, {{label = w.label, ms = st.at - lower(i, w)}}, st.at)
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
remember()
return {'ok', '', touched}
