-- read_window.lua: tokens' aggregates exactly as of an instant each, read-only;
-- several tokens per call (the library's set-up and the windows' parse paid once).
-- Starts from the stored state (as of last_update) and slides the windows
-- forward in memory to `at`; writes nothing. As of last_update itself the
-- screener's metrics are the stored ones (stored_screener).
--
-- KEYS: per token, in order (the same count for every token of the call):
--       token:{A}:trades, token:{A}:indices, token:{A}:aggregates, token:{A}:last_update,
--       then, for the screener metrics, tradeagg:{A}:makers, tradeagg:{A}:buyers,
--       tradeagg:{A}:sellers, tradeagg:{A}:high, tradeagg:{A}:low (lib/screener.lua),
--       then, with long windows (or the previous windows: a bucket) in ARGV[1],
--       tradeagg:{A}:buckets, tradeagg:{A}:bhigh, tradeagg:{A}:blow (lib/long.lua),
--       then, with the screener's sets, tradeagg:{A}:ids (the id index, for its "S"
--       only: a list written without the sets is counted from the list as a damaged
--       one is, below), then, with those, prev_makers' tradeagg:{A}:pmakers and
--       tradeagg:{A}:ptraders (lib/pmakers.lua): 4, 7, 10, 13 or 15 keys per token,
--       #KEYS / (#ARGV - 1)
-- ARGV[1] windows "label:ms,label:ms,..." shortest first, then, with long
--         (bucketed) windows, "|<long windows>;<bucket ms>" (lib/windows.lua);
--         the long windows come after the exact ones in the answer
-- ARGV[2..] one per token: its at, epoch ms, or "" for the token's last_update
-- Returns: one answer per token, in the order of the tokens, each one of
--          (a token whose read fails otherwise has an error reply in its place;
--          the other tokens' answers stand):
--          {"ok", at, last_update, reason|false, then per window of ARGV[1]
--           its label, complete_from|false (a partial window: the instant
--           from which it is complete) and METRICS in order (lib/windows.lua):
--           buys, sells, buy_volume, sell_volume, volume, open|false,
--           close|false, price_change_pct|false, and with the screener's
--           keys makers, buyers, sellers, high|false, low|false; then, with
--           the screener's and the buckets' keys and a bucket in ARGV[1]
--           (lib/prev.lua), per window: label, prev_buys, prev_sells,
--           prev_volume, prev_makers|false (not kept, or not known), prev_complete_from|false}
--          {"unknown", at}            the token has no state
--          {"past", at, last_update}  at is earlier than last_update
--          {"rebuilding", at}         the stored state fails its checks and the
--                                     list is longer than REBUILD_STEP (a rebuild
--                                     is due, or under way: lib/rebuild.lua)
--          {"behind", at, last_update, touched, windows}
--                                     at is so far ahead of last_update that
--                                     sliding there would take one walk past
--                                     SLIDE_MAX list elements (lib/slide.lua):
--                                     no metrics; touched = list elements read
--                                     until then; windows = those the token
--                                     carries ("label:ms,..."). The caller
--                                     advances the token with them (apply_trades,
--                                     bounded calls: none added) and reads again
--                                     (engine/read.py)
-- A window the token does not carry (the reader is configured with other
-- windows than the writers) is counted from the list in memory, backward from
-- its nearest shorter neighbour, at most SEED_MAX elements (lib/slide.lua):
-- partial (complete_from) when that, or the list, was not long enough for it.
-- A window the writers are still seeding is answered as stored (partial). When the stored state fails its checks (damage), the
-- windows are counted from the list's trustworthy elements in memory instead,
-- and reason says why; nothing is written (the next apply, or the janitor,
-- repairs the stored state). Only lists of at most REBUILD_STEP elements are
-- counted so: the work is bounded. A read ahead of last_update slides at most
-- SLIDE_MAX (+ one 1,024 chunk) elements per walk, else answers "behind".
--@include lib/slide.lua
--@include lib/rebuild.lua
--@include lib/prev.lua

-- KEYS of token t (0-based) as the library takes them (K[5], K[6]: the id index and
-- memo, unknown to a read: no seeding mark is followed; K.ids: the id index, for
-- its "S" only; K[12..14]: the long windows' keys)
local function keys_of(t, per)
  local b = per * t
  local K = {KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], false, false}
  local lk = (per == 7 and 5) or (per >= 13 and 10) or nil  -- the long windows' first
  if lk then K[12], K[13], K[14] = KEYS[b + lk], KEYS[b + lk + 1], KEYS[b + lk + 2] end
  if per >= 10 then
    K[7], K[8], K[9], K[10], K[11] = KEYS[b + 5], KEYS[b + 6], KEYS[b + 7], KEYS[b + 8], KEYS[b + 9]
    K.ids = KEYS[b + (per == 15 and 13 or per)]
  end
  if per == 15 then K[15], K[16] = KEYS[b + 14], KEYS[b + 15] end  -- lib/pmakers.lua's
  return K
end

-- the answer: per window of `conf`, its label, complete_from and metrics
local function answer(K, head, st, ws, conf, at, price_of)
  local out, per = head, 1 + (st.scr and #METRICS or SEED_METRICS)
  local m = metrics(K, st, ws, price_of)
  for i, w in ipairs(ws) do
    if conf.has[w.label] then
      local cf = st.cf[i] or false
      if cf and cf <= at then cf = false end
      out[#out + 1] = w.label; out[#out + 1] = cf and fmt_int(cf)
      for k = per * (i - 1) + 2, per * i do out[#out + 1] = m[k] end
    end
  end
  return out
end

local function loaded(K, conf)
  local st = load_state(K, conf)
  -- the sets are kept for this list (the id index's "S", as an apply checks it)
  if st and st.sk and K.ids and st.n > 0 and redis.call('HEXISTS', K.ids, 'S') == 0 then
    corrupt('no screener sets (written without them)')
  end
  if st then seed(K, st, st.ws) end
  return st
end

-- The screener metrics the apply stored as of last_update, when the read is as
-- of it (nothing entered, no window added, the list not empty) and every
-- window's stored ones are consistent with its counted totals: what
-- screener_metrics would count again from the sets. Else nil (counted).
-- An empty list is left to the sets: a seed-metrics writer may have emptied
-- it after a full one stored them (it writes none of these fields). The checks
-- are the load checks' kind (damage, not truth): integer counts with
-- buyers <= buys, sellers <= sells, max(buyers, sellers) <= makers <=
-- buyers + sellers and makers <= trades; high and low plain decimals (as the
-- validation writes prices), present exactly when the window holds trades.
local function plain_price(p) return p and smatch(p, '^%d+%.?%d*$') end

local function stored_scr_ok(m, t)
  for k = 1, 3 do if m[k] < 0 or m[k] ~= floor(m[k]) then return false end end
  local mk, by, se = m[1], m[2], m[3]
  if by > t.b or se > t.s or mk > t.b + t.s or mk < max(by, se) or mk > by + se then
    return false
  end
  local hi, lo = m[4], m[5]
  if t.b + t.s == 0 then return not hi and not lo end
  return plain_price(hi) and plain_price(lo)
end

local function stored_screener(st, ws, at, lu)
  if at ~= lu or st.n == 0 or st.added or #st.entered > 0 then return nil end
  local scr = {}
  for i = 1, #ws do
    local m = st.old[i] and st.old[i].scr
    if not (m and stored_scr_ok(m, st.tot[i])) then return nil end
    scr[i] = m
  end
  return scr
end

-- one token's answer: K its keys, arg its ARGV entry (at, or "")
local function read_token(K, conf, arg)
  local ws = conf
  local ok, st = pcall(loaded, K, conf)
  if not ok then
    local _, reason = caught(st)
    local n = redis.pcall('LLEN', K[1])
    if type(n) == 'number' and n > REBUILD_STEP then return {'rebuilding', arg} end
    local lu = tonumber(redis.pcall('GET', K[4]))
    local es = trusted_entries(K, false)
    local at = tonumber(arg) or lu or (es[#es] and es[#es].ts) or 0
    if lu and at < lu then return {'past', fmt_int(at), fmt_int(lu)} end
    st = state_of(es, ws, at)
    st.at = lu or at
    local carried, cf = carried_windows(K, conf, st.at)
    local by = {}
    for i, w in ipairs(carried) do by[w.label] = cf[i] end
    for i, w in ipairs(ws) do st.cf[i] = by[w.label] end
    if K[7] then  -- counted from scratch: no set is trusted
      local out, froms = {}, {}
      for i, w in ipairs(ws) do out[i], froms[i] = {0, 0, 0, false, false}, at - w.ms end
      st.scr = screener_add(out, es, {{}, {}, {}}, froms, at)
    end
    local out = answer(K, {'ok', fmt_int(at), fmt_int(st.at), reason}, st, ws, conf, at,
                       memory_prices(es))
    local xs = {}  -- the list's trades after last_update, with the stored buckets
    for _, x in ipairs(es) do if x.ts > st.at and x.ts <= at then xs[#xs + 1] = x end end
    local sk = screener_keys(K)
    return LONG.P.answer(out, K, conf, st.at, at, xs, conf.long and sk and pending(sk, xs), sk)
  end
  if st == nil then return {'unknown', arg} end
  ws = st.ws
  local at = tonumber(arg) or st.at
  if at < st.at then return {'past', fmt_int(at), fmt_int(st.at)} end
  local lu = st.at
  local slid, err = pcall(advance, K, st, ws, at, nil, SLIDE_MAX)
  if not slid then
    if caught(err) == BEHIND then
      local added, carried = {}, {}
      for _, i in ipairs(st.added or {}) do added[i] = true end
      for i, w in ipairs(ws) do
        if not added[i] then carried[#carried + 1] = w.label .. ':' .. fmt_int(w.ms) end
      end
      return {'behind', fmt_int(at), fmt_int(lu), touched,
              table.concat(carried, ',') .. (conf.long_spec or '')}
    end
    error(err, 0)
  end
  local ex = st.sk and pending(st.sk, st.entered)
  if st.sk then st.scr = stored_screener(st, ws, at, lu) or screener_metrics(st.sk, ws, at, ex, st.cf) end
  local out = answer(K, {'ok', fmt_int(at), fmt_int(lu), false}, st, ws, conf, at)
  return LONG.P.answer(out, K, conf, lu, at, st.entered, ex, st.sk, st.agg, st.n)
end

return guarded(function()
  local conf = parse_windows(ARGV[1])
  local out, per = {}, #KEYS / (#ARGV - 1)
  for t = 0, #ARGV - 2 do
    -- each token as if alone in the call: the state the library keeps between
    -- calls of its functions starts afresh (lib/core.lua's counters, lib/long.lua's
    -- per-token memos); a token's failure is its own answer (as guarded makes it)
    reset_touched()
    LONG.pm, LONG.tm, LONG.rm, LONG.sn, LONG.dq, LONG.w = nil, nil, nil, nil, nil, nil
    local ok, r = pcall(read_token, keys_of(t, per), conf, ARGV[2 + t])
    if not ok then
      local _, msg = caught(r)
      r = redis.error_reply(msg)
    end
    out[t + 1] = r
  end
  return out
end)
