-- lib/slide.lua: move a state's windows forward in time and turn totals into
-- metrics. Windows only ever move forward: entries enter at the end (st.e)
-- and leave at each window's start (st.idx[i]), each read once.
--@include lib/state.lua

-- Walk entries from index `from` (below `limit`) while their ts <= bound,
-- calling fn(ctx, side, qhi, qlo, raw) on each. Chunks start small (`first`,
-- default 2) and grow x8 up to 1,024: a call usually moves a pointer by a
-- few. Elements inside `buf` (elements [buf.from, buf.from + #buf) read
-- beforehand) are taken from it. Returns the index of the first entry not taken, that
-- entry (raw, if read) and the last entry taken (raw, if any): prices are
-- parsed only where a caller needs them. With
-- `cap`, a walk that would take more than `cap` elements (plus the rest of its
-- last chunk) stops by raising BEHIND (reads: lib/status.lua, the caller
-- catches it).
local function walk(key, from, limit, bound, fn, ctx, buf, first, cap)
  local size, last = first or 2, nil
  local stop = cap and from + cap
  while from < limit do
    if stop and from >= stop then fail(BEHIND, 'a walk would take more than ' .. cap) end
    local raw, j, upto
    local k = buf and from - buf.from
    if k and k >= 0 and k < #buf then
      raw, j, upto = buf, k + 1, min(#buf, limit - buf.from)
    else
      raw = lrange(key, from, min(from + size, limit) - 1)
      if #raw == 0 then corrupt('list shorter than its indices') end
      j, upto = 1, #raw
      if size < 1024 then size = min(size * 8, 1024) end
    end
    for i = j, upto do
      local r = raw[i]
      local ts, side, hi, lo = head(r)
      if not ts then corrupt('unparsable list element at ' .. (from + i - j)) end
      if ts > bound then return from + i - j, r, last end
      fn(ctx, side, hi, lo, r)
      last = r
    end
    from = from + upto - j + 1
  end
  return from, nil, last
end

local function enter(tots, side, qhi, qlo)
  for i = 1, #tots do addq(tots[i], side, qhi, qlo, 1) end
end

-- enter, noting the element for the screener: ctx = {totals, entered}
local function enter_noted(ctx, side, qhi, qlo, raw)
  local tots = ctx[1]
  for i = 1, #tots do addq(tots[i], side, qhi, qlo, 1) end
  local xs = ctx[2]
  xs[#xs + 1] = raw
end

-- ctx: {t = totals, gone = the leaving elements or nil}
local function leave(ctx, side, qhi, qlo, raw)
  addq(ctx.t, side, qhi, qlo, -1)
  if ctx.gone then ctx.gone[#ctx.gone + 1] = raw end
end

-- Most list elements one call takes to seed one window (below): issue 11, a
-- window added to a long list is counted over several calls.
local SEED_MAX = 2048

-- Extend window i backward from its index st.idx[i]: the entries before it
-- that lie inside it (ts > lower = max(at - w, st.cov), the list's coverage)
-- are added to st.tot[i], at most SEED_MAX of them (plus the rest of one ms,
-- so that a ms is never split). `b` is the count boundary before (the window
-- counts exactly the entries with b < ts <= at). After it: a window that
-- reached its start (or the list's head) with nothing missing is unmarked and
-- complete; otherwise it is marked (st.mark[i] = {B, C}: B its new boundary, C
-- the coverage) and partial, complete_from = max(B, C) + w. Returns true when
-- SEED_MAX stopped it (another call takes more).
local function extend(K, st, ws, i, b)
  local w = ws[i]
  local lower = max(st.at - w.ms, st.cov)
  local k, t, taken, edge, size = st.idx[i], st.tot[i], 0, nil, 16
  local budget = false
  while k > 0 do
    local from = max(0, k - size)
    local raw = lrange(K[1], from, k - 1)
    if #raw ~= k - from then corrupt('list shorter than its indices') end
    local stop = false
    for j = #raw, 1, -1 do
      local ts, side, hi, lo = head(raw[j])
      if not ts then corrupt('unparsable list element at ' .. (k - 1)) end
      if ts <= lower then stop = true; break end
      if edge and ts < edge then stop, budget, b = true, true, ts; break end
      addq(t, side, hi, lo, 1)
      k = k - 1; taken = taken + 1
      if not edge and taken >= SEED_MAX then edge = ts end
    end
    if stop then break end
    if size < 1024 then size = size * 8 end
  end
  if not budget then b = min(b, lower) end
  if taken > 0 then st.dirty[i] = true end
  st.idx[i] = k
  if b > st.at - w.ms then
    st.mark[i] = {b, st.cov}
    st.cf[i] = max(b, st.cov) + w.ms
  else
    st.mark[i] = nil
    st.cf[i] = nil
  end
  return budget
end

-- Seed the windows of a loaded state: the windows it carries that are still
-- being seeded (marked, entries before their index) go on, then the windows
-- it did not carry (st.added), shortest first, each starting from the nearest
-- shorter window's index and totals (or empty, at the end) and extended
-- backward. A call takes at most SEED_MAX elements per window: st.more says
-- another call would take more. Without marks (a read: K[5] unknown) a
-- carried window is taken as it is.
local function seed(K, st, ws)
  st.more = false
  if not st.added and next(st.mark) == nil then return end  -- the usual token: nothing to seed
  for i = 1, #ws do
    local m = st.mark[i]
    if m and st.idx[i] and st.idx[i] > 0 then
      st.seeding = true
      if extend(K, st, ws, i, m[1]) then st.more = true end
    end
  end
  local added = st.added or {}
  for a = #added, 1, -1 do
    local i = added[a]
    local j = i - 1
    while j >= 1 and not st.idx[j] do j = j - 1 end
    local t, b = new_totals(), st.at
    if j >= 1 then
      for k, v in pairs(st.tot[j]) do t[k] = v end
      st.idx[i] = st.idx[j]
      b = st.mark[j] and st.mark[j][1] or (st.at - ws[j].ms)
    else
      st.idx[i] = st.e
    end
    st.tot[i] = t; st.dirty[i] = true
    if extend(K, st, ws, i, b) then st.more = true end
  end
end

-- Account for entries inserted into a state that stands at st.at.
local function account(st, ws, inserted)
  for _, x in ipairs(inserted) do
    if x.ts <= st.at then
      st.e = st.e + 1
      st.close = nil
      if st.entered then st.entered[#st.entered + 1] = x end
      for i, w in ipairs(ws) do
        -- inside the window's count: after its start, or after its mark's boundary
        local lower = st.mark[i] and st.mark[i][1] or st.at - w.ms
        if x.ts > lower then add(st.tot[i], x, 1); st.dirty[i] = true
        else st.idx[i] = st.idx[i] + 1 end
      end
    end
  end
end

-- Most list elements one walk of apply_trades takes, besides as many as the call
-- inserts (so the windows keep up with the trades): issue 11, a call's work is
-- bounded whatever the list's length; a longer slide takes several calls.
local SLIDE_MAX = 2048

-- ts of list element j (from memory if this call appended it)
local function ts_of(K, st, j)
  if st.mem and j >= st.mem_from then return st.mem[j - st.mem_from + 1].ts end
  return ts_at(K[1], j)
end

-- The latest instant in [st.at, at] the windows reach when no walk takes more
-- than `most` list elements: before the element `most` past the end enters,
-- and before the element `most` past window i's start leaves it. One LINDEX
-- per walk. Entries sharing one ms are not split: to move at all, at least
-- st.at + 1 is reached (then a walk takes `most` + the entries of one ms).
local function reach(K, st, ws, at, most)
  local to = at
  local limit = st.n
  if st.mem and st.e <= st.mem_from then limit = st.mem_from end  -- the rest enters from memory
  if st.e + most < limit then to = min(to, ts_of(K, st, st.e + most) - 1) end
  for i, w in ipairs(ws) do
    local j = st.idx[i] + most
    if j < st.n then to = min(to, ts_of(K, st, j) + w.ms - 1) end
  end
  if to <= st.at then to = min(at, st.at + 1) end
  return to
end

-- When the longest window holds at most PREFETCH entries, advance reads them
-- in one LRANGE for every window's walk (a small token's usual case: one call
-- instead of one per window; an LRANGE costs about as much as 20 elements)
local PREFETCH = 64

-- The list elements [from, st.e) as a walk's `buf`: read in one LRANGE, but
-- for those this call appended, taken from memory (st.mem)
local function elements(K, st, from)
  local upto, m = st.e - 1, st.mem and st.mem_from
  if m and m <= upto then upto = m - 1 end
  local buf = from <= upto and lrange(K[1], from, upto) or {}
  if #buf ~= max(upto - from + 1, 0) then corrupt('list shorter than its indices') end
  if m then
    for j = max(from, m), st.e - 1 do buf[#buf + 1] = st.mem[j - m + 1].raw end
  end
  buf.from = from
  return buf
end

-- Slide every window forward to `at` (>= st.at): add what entered, subtract
-- what left, walking from the stored indices. Never a rescan. Entries this
-- call appended (st.mem, from list index st.mem_from) are taken from memory.
-- The longest window's leaving elements end in st.gone (st.all_gone: all of them).
-- With `most`, no walk takes more than `most` list elements: the windows stop
-- at an earlier instant (reach) when `at` is further; st.at says where. With
-- `cap` (a read, which cannot stop short), a walk going past `cap` elements
-- raises BEHIND instead.
local function advance(K, st, ws, at, most, cap)
  if st.n > 0 and not st.grew and st.tail.ts <= at - ws[#ws].ms then
    -- every entry has left every window (a long-quiet token): nothing to walk,
    -- but the entries not entered yet enter the long windows (lib/long.lua)
    if st.entered and st.e < st.n then
      local e = st.e
      st.e = st.n
      for _, raw in ipairs(elements(K, st, e)) do st.entered[#st.entered + 1] = raw end
    end
    for i = 1, #ws do
      if st.idx[i] ~= st.n then st.dirty[i] = true end
      st.idx[i] = st.n; st.tot[i] = new_totals()
    end
    st.e, st.at, st.opens, st.gone, st.all_gone = st.n, at, {}, nil, true
    return
  end
  if most and at > st.at then at = reach(K, st, ws, at, most) end
  local e0 = st.e
  local limit = st.n
  if st.mem and st.e <= st.mem_from then limit = st.mem_from end
  local _, last, close  -- the last element entered from the list (raw), from memory (price)
  if st.entered then
    st.e, _, last = walk(K[1], st.e, limit, at, enter_noted, {st.tot, st.entered}, nil, nil, cap)
  else
    st.e, _, last = walk(K[1], st.e, limit, at, enter, st.tot, nil, nil, cap)
  end
  if st.mem and st.e >= st.mem_from then
    local j = st.e - st.mem_from + 1
    while j <= #st.mem and st.mem[j].ts <= at do
      local x = st.mem[j]
      enter(st.tot, x.side, x.qhi, x.qlo)
      if st.entered then st.entered[#st.entered + 1] = x end
      st.e = st.e + 1; j = j + 1
      close = x.price
    end
  end
  if st.e ~= e0 then st.close = close or price_of(last) end
  st.opens, st.gone = {}, {}
  local n = #ws
  -- every window starts at or after the longest one's start: when few elements
  -- lie between it and the end, one read serves every window's walk
  local buf, from = nil, st.idx[n]
  if st.e > from and st.e - from <= PREFETCH then buf = elements(K, st, from) end
  -- about as many entries leave each window as entered it: a walk's first
  -- chunk is sized for them (a token taking many trades per call reads them
  -- in one LRANGE, not in chunks of 2, 16, 128)
  local entered = st.e - e0
  local first = entered > 1 and min(entered + 2, 1024) or 2
  local p0, p1  -- the previous (shorter) window's start before and after its walk
  -- open: the element a walk stopped at (raw); oraw, oprice: the last one priced
  local ctx, open, oraw, oprice = {}, nil, nil, nil
  for i, w in ipairs(ws) do
    local i0 = st.idx[i]
    -- a shorter window from the same entry kept it: so does this one (open as it was)
    if not (i0 == p0 and p1 == p0) then
      ctx.t, ctx.gone = st.tot[i], (i == n) and st.gone or nil
      st.idx[i], open = walk(K[1], i0, st.e, at - w.ms, leave, ctx, buf, first, cap)
    end
    p0, p1 = i0, st.idx[i]
    if st.idx[i] ~= i0 then st.dirty[i] = true end
    if st.idx[i] == st.e then st.tot[i] = new_totals() end
    -- its price, unless `prices` has the stored open (the window kept its
    -- first entry and nothing entered it late)
    local o = st.old and st.old[i]
    if open and (st.dirty[i] or not (o and o.open) or o.idx ~= st.idx[i]) then
      if open ~= oraw then oraw, oprice = open, price_of(open) end
      st.opens[i] = oprice
    end
  end
  st.at = at
end

-- open of window i and the close, as price strings (false when empty); a
-- price is read from the list only when the window's first or last entry moved
local function prices(K, st, i)
  if st.idx[i] >= st.e then return false, false end
  if not st.close then st.close = price_at(K[1], st.e - 1) end
  if st.opens and st.opens[i] then return st.opens[i], st.close end
  local o = st.old and st.old[i]
  if st.dirty[i] or not o or not o.open or o.idx ~= st.idx[i] + (st.shift or 0) then
    return price_at(K[1], st.idx[i]), st.close
  end
  return o.open, st.close
end

local function pct(open, close)
  return sfmt('%.17g', (tonumber(close) - tonumber(open)) / tonumber(open) * 100)
end

-- prices from in-memory entries instead of the list (reads of damaged tokens)
local function memory_prices(es)
  return function(st, i)
    if st.idx[i] >= st.e then return false, false end
    return es[st.idx[i] + 1].price, es[st.e].price
  end
end

-- Metrics of every window as a flat list: label, then METRICS in order
-- (open, close and price_change_pct are false when the window is empty).
-- Windows holding the same totals (nested windows starting at the same entry:
-- often all but the shortest) format them once, as changes() does (tx: the
-- texts of totals tx.t, and the change of tx.open to tx.close).
local function metrics(K, st, ws, price_of)
  local out, tx = {}, {}
  for i, w in ipairs(ws) do
    local t = st.tot[i]
    local open, close
    if price_of then open, close = price_of(st, i) else open, close = prices(K, st, i) end
    if not (tx.t and same_totals(t, tx.t)) then
      tx = {t = t, fmt_int(t.b), fmt_int(t.s), fmt_vol(t.bh, t.bl), fmt_vol(t.sh, t.sl),
            volume(t), open = tx.open, close = tx.close, pct = tx.pct}
    end
    out[#out + 1] = w.label; out[#out + 1] = tx[1]; out[#out + 1] = tx[2]
    out[#out + 1] = tx[3]; out[#out + 1] = tx[4]; out[#out + 1] = tx[5]
    out[#out + 1] = open; out[#out + 1] = close
    if open and (tx.open ~= open or tx.close ~= close) then
      tx.open, tx.close, tx.pct = open, close, pct(open, close)
    end
    out[#out + 1] = open and tx.pct
    local m = st.scr and st.scr[i]
    if m then for k = 1, SCR_METRICS do out[#out + 1] = m[k] end end
  end
  return out
end

-- The screener's part of an apply (st.sk): what entered the windows goes into
-- the five sets, what left the longest window out (as many as left: trimmed by
-- score; the trader sets' trim is lib/long.lua's with long windows), then
-- every window's screener metrics as of st.at (st.scr): makers.. by
-- SCR.count, high and low as a small deque is updated in memory (SCR.deque),
-- else from the stored deque (extremes).
local function screener_step(st, ws)
  local sk, at = st.sk, st.at
  local xs = SCR.items(st.entered)
  st.entered = {}
  if #xs > 0 then SCR.traders(sk, xs); st.fed = true end
  local upto = at - ws[#ws].ms
  local trim = st.all_gone or (st.gone and #st.gone > 0)
  if trim and not st.long then
    for k = 1, 3 do redis.call('ZREMRANGEBYSCORE', sk[k], '-inf', fmt_int(upto)) end
  end
  local out, froms = SCR.froms(ws, at, st.cf)
  SCR.count(sk, froms, out)
  for k = 4, 5 do
    local kind = k == 4 and 1 or -1
    local done = SCR.deque(sk[k], kind, xs, upto, froms, out, k, trim)
    if trim then redis.call('ZREMRANGEBYSCORE', sk[k], '-inf', fmt_int(upto)) end
    if not done then  -- a long deque: updated where it lies, then read
      if #xs > 0 then deque_add(sk[k], kind, xs) end
      extremes(sk[k], ws, at, out, k, froms)
    end
  end
  st.scr = out
end

-- HSET/HDEL arguments for the aggregate fields that changed since loading.
-- Windows starting at the same entry have the same totals and prices: each
-- text is formatted once for a run of such windows (tx: the text of totals
-- tx.t, and the change of tx.open to tx.close).
local function changes(K, st, ws)
  local set, del = {}, {}
  local function put(f, v) set[#set + 1] = f; set[#set + 1] = v end
  local tx = {}
  for i, w in ipairs(ws) do
    local t, o = st.tot[i], st.old[i]
    if not (tx.t and same_totals(t, tx.t)) then tx = {t = t} end
    local bchg = t.bh ~= o.bh or t.bl ~= o.bl
    local schg = t.sh ~= o.sh or t.sl ~= o.sl
    if t.b ~= o.b then tx.b = tx.b or fmt_int(t.b); put(w.buys, tx.b) end
    if t.s ~= o.s then tx.s = tx.s or fmt_int(t.s); put(w.sells, tx.s) end
    if bchg then tx.bv = tx.bv or fmt_vol(t.bh, t.bl); put(w.buy_volume, tx.bv) end
    if schg then tx.sv = tx.sv or fmt_vol(t.sh, t.sl); put(w.sell_volume, tx.sv) end
    if bchg or schg then tx.v = tx.v or volume(t); put(w.volume, tx.v) end
    local cf = st.cf and st.cf[i] or false
    if cf and cf <= st.at then cf = false end  -- complete now
    if cf ~= o.cf then
      if cf then put(w.complete_from, fmt_int(cf)) else del[#del + 1] = w.complete_from end
    end
    local m, om = st.scr and st.scr[i], o.scr
    if m then
      if m[1] ~= om[1] then put(w.makers, fmt_int(m[1])) end
      if m[2] ~= om[2] then put(w.buyers, fmt_int(m[2])) end
      if m[3] ~= om[3] then put(w.sellers, fmt_int(m[3])) end
      if m[4] then
        if m[4] ~= om[4] then put(w.high, m[4]) end
        if m[5] ~= om[5] then put(w.low, m[5]) end
      elseif om[4] ~= false then
        del[#del + 1] = w.high; del[#del + 1] = w.low
      end
    end
    local open, close = prices(K, st, i)
    if open then
      if open ~= o.open then put(w.open, open) end
      if close ~= o.close then put(w.close, close) end
      if open ~= o.open or close ~= o.close then
        if tx.open ~= open or tx.close ~= close then
          tx.open, tx.close, tx.pct = open, close, pct(open, close)
        end
        put(w.price_change_pct, tx.pct)
      end
    elseif o.open ~= false then
      del[#del + 1] = w.open; del[#del + 1] = w.close; del[#del + 1] = w.price_change_pct
    end
  end
  return set, del
end
