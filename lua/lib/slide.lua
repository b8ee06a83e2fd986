-- lib/slide.lua: move a state's windows forward in time and turn totals into
-- metrics. Windows only ever move forward: entries enter at the end (st.e)
-- and leave at each window's start (st.idx[i]), each read once.
--@include lib/state.lua

-- Walk entries from index `from` (below `limit`) while their ts <= bound,
-- calling fn(ctx, side, qhi, qlo, raw) on each. Chunks start small and grow:
-- a call usually moves a pointer by a few. Returns the index of the first
-- entry not taken, its price (if read) and the price of the last one taken
-- (if read); prices are parsed only for those two.
local function walk(key, from, limit, bound, fn, ctx)
  local size, last = 2, nil
  while from < limit do
    local raw = lrange(key, from, min(from + size, limit) - 1)
    if #raw == 0 then corrupt('list shorter than its indices') end
    for i = 1, #raw do
      local r = raw[i]
      local ts, side, hi, lo = head(r)
      if not ts then corrupt('unparsable list element at ' .. (from + i - 1)) end
      if ts > bound then return from + i - 1, price_of(r), price_of(last) end
      fn(ctx, side, hi, lo, r)
      last = r
    end
    from = from + #raw
    if size < 1024 then size = size * 8 end
  end
  return from, nil, price_of(last)
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

-- Give the windows a loaded state added (st.added, longest first) their index
-- and totals as of st.at: each starts from the nearest longer window and
-- walks forward to its own start (the entries between the two starts); one
-- longer than every window the token carried starts at the list's head, with
-- what the list kept (it is partial: st.cf, from load_state).
local function seed(K, st, ws)
  for _, i in ipairs(st.added or {}) do
    local j = i + 1
    while j <= #ws and not st.idx[j] do j = j + 1 end
    if j > #ws then j = i - 1; while not st.idx[j] do j = j - 1 end end
    local t, from = new_totals(), st.idx[j]
    for k, v in pairs(st.tot[j]) do t[k] = v end
    if j < i and from > 0 then  -- the entries before the longest window's start
      walk(K[1], 0, from, math.huge, enter, {t}); from = 0
    end
    st.idx[i] = walk(K[1], from, st.e, st.at - ws[i].ms, leave, {t = t})
    if st.idx[i] == st.e then t = new_totals() end
    st.tot[i] = t; st.dirty[i] = true
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
        if x.ts > st.at - w.ms then add(st.tot[i], x, 1); st.dirty[i] = true
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

-- Slide every window forward to `at` (>= st.at): add what entered, subtract
-- what left, walking from the stored indices. Never a rescan. Entries this
-- call appended (st.mem, from list index st.mem_from) are taken from memory.
-- The longest window's leaving elements end in st.gone (st.all_gone: all of them).
-- With `most`, no walk takes more than `most` list elements: the windows stop
-- at an earlier instant (reach) when `at` is further; st.at says where.
local function advance(K, st, ws, at, most)
  if st.n > 0 and not st.grew and st.tail.ts <= at - ws[#ws].ms then
    -- every entry has left every window (a long-quiet token): nothing to walk
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
  local _, close
  if st.entered then
    st.e, _, close = walk(K[1], st.e, limit, at, enter_noted, {st.tot, st.entered})
  else
    st.e, _, close = walk(K[1], st.e, limit, at, enter, st.tot)
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
  if st.e ~= e0 then st.close = close end
  st.opens, st.gone = {}, {}
  local n = #ws
  for i, w in ipairs(ws) do
    local i0 = st.idx[i]
    local ctx = {t = st.tot[i], gone = (i == n) and st.gone or nil}
    local open
    st.idx[i], open = walk(K[1], i0, st.e, at - w.ms, leave, ctx)
    if open then st.opens[i] = open end
    if st.idx[i] ~= i0 then st.dirty[i] = true end
    if st.idx[i] == st.e then st.tot[i] = new_totals() end
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
-- (open, close and price_change_pct are false when the window is empty)
local function metrics(K, st, ws, price_of)
  local out = {}
  for i, w in ipairs(ws) do
    local t = st.tot[i]
    local open, close
    if price_of then open, close = price_of(st, i) else open, close = prices(K, st, i) end
    out[#out + 1] = w.label; out[#out + 1] = fmt_int(t.b); out[#out + 1] = fmt_int(t.s)
    out[#out + 1] = fmt_vol(t.bh, t.bl); out[#out + 1] = fmt_vol(t.sh, t.sl)
    out[#out + 1] = volume(t)
    out[#out + 1] = open; out[#out + 1] = close
    out[#out + 1] = open and pct(open, close)
    local m = st.scr and st.scr[i]
    if m then for k = 1, SCR_METRICS do out[#out + 1] = m[k] end end
  end
  return out
end

-- The screener's part of an apply (st.sk): what entered the windows goes into
-- the five sets, what left the longest window out (as many as left: trimmed by
-- score), then every window's screener metrics as of st.at (st.scr).
local function screener_step(st, ws)
  local fed = screener_feed(st.sk, st.entered)
  st.fed = fed or st.fed
  local drop = st.gone and #st.gone or 0
  if st.all_gone or drop > 0 then screener_trim(st.sk, st.at - ws[#ws].ms) end
  st.entered = {}
  st.scr = screener_metrics(st.sk, ws, st.at)
end

-- HSET/HDEL arguments for the aggregate fields that changed since loading
local function changes(K, st, ws)
  local set, del = {}, {}
  local function put(f, v) set[#set + 1] = f; set[#set + 1] = v end
  for i, w in ipairs(ws) do
    local t, o = st.tot[i], st.old[i]
    local bchg = t.bh ~= o.bh or t.bl ~= o.bl
    local schg = t.sh ~= o.sh or t.sl ~= o.sl
    if t.b ~= o.b then put(w.buys, fmt_int(t.b)) end
    if t.s ~= o.s then put(w.sells, fmt_int(t.s)) end
    if bchg then put(w.buy_volume, fmt_vol(t.bh, t.bl)) end
    if schg then put(w.sell_volume, fmt_vol(t.sh, t.sl)) end
    if bchg or schg then put(w.volume, volume(t)) end
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
      if open ~= o.open or close ~= o.close then put(w.price_change_pct, pct(open, close)) end
    elseif o.open ~= false then
      del[#del + 1] = w.open; del[#del + 1] = w.close; del[#del + 1] = w.price_change_pct
    end
  end
  return set, del
end
