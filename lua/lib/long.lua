-- lib/long.lua: bucketed (long) windows, CONTRACT §2c: windows longer than
-- TRADEAGG_EXACT_HORIZON. With resolution r, window w at instant `at` holds
-- the trades with s < ts <= at, s = ceil((at - w) / r) * r. They are not in
-- the exact machinery (list, indices, slide): per token, the trades that
-- ENTER the windows (ts <= the state's instant: the same elements the
-- screener is fed) are summed per bucket B = ceil(ts / r) * r, which covers
-- (B - r, B]; a bucket holds entered trades only, so window w = the buckets
-- B > s, never part of one. Keys (passed in KEYS, the token's hash tag):
--   LK[1] tradeagg:{A}:buckets  sorted set, score B, one member per non-empty
--         bucket: "B b s buy_vol sell_vol high low fts fseq fprice fid lts
--         lseq lprice lid" (counts, exact volumes, extreme prices, the first
--         and last trade in (ts, seq, id) order with their prices)
--   LK[2] tradeagg:{A}:bhigh    monotonic deque of bucket highs (lib/screener.lua's
--   LK[3] tradeagg:{A}:blow     deque_one with ts = B): "B price", score B
-- Per window L, in token:{A}:aggregates: L:buys, L:sells, L:buy_volume,
-- L:sell_volume (running sums: what entered is added, the buckets s passed
-- are subtracted, never a rescan), L:from (s of the last write: where the
-- next subtraction starts), L:volume, L:open, L:close, L:price_change_pct,
-- with the screener's keys L:makers, L:buyers, L:sellers (ZCOUNT of the
-- trader sets, whose trim follows the longest long window), L:high, L:low
-- (first deque element after s), and L:complete_from while it is partial.
-- Partial: the buckets hold every entered trade after C (a token's coverage);
-- every window counts the buckets after max(s, C), and says complete_from =
-- C + w. C is -inf for a token born with its long windows; a window newly
-- carried (a rolling deploy) or a rebuilt token sets it (see LONG.step).
-- All of it is one local table (the assembled scripts are near Lua's limit
-- of 200 main-chunk locals).
--@include lib/screener.lua

local LONG = {}
LONG.F = {'buys', 'sells', 'buy_volume', 'sell_volume', 'from', 'complete_from', 'at'}
LONG.PAT = '^(%-?%d+) (%d+) (%d+) (%S+) (%S+) (%S+) (%S+) (%-?%d+) (%d+) (%S+) (%S+) '
  .. '(%-?%d+) (%d+) (%S+) (%S+)$'

-- the smallest multiple of r at or after x (exact for integers below 2^53)
function LONG.ceil(x, r)
  local q = floor(x / r) * r
  while q < x do q = q + r end
  while q - r >= x do q = q - r end
  return q
end

-- a bucket member parsed: {B, t = totals, hi, lo, first = entry, last = entry};
-- shared by the call (LONG.begin) unless `fresh` (a copy the caller may change)
function LONG.parse(m, fresh)
  local k = not fresh and LONG.pm and LONG.pm[m]
  if k then return k end
  local b, nb, ns, bv, sv, hi, lo, fts, fseq, fp, fid, lts, lseq, lp, lid = smatch(m, LONG.PAT)
  if not b then corrupt('unparsable bucket ' .. ssub(m, 1, 40)) end
  local t = new_totals()
  t.b, t.s = tonumber(nb), tonumber(ns)
  t.bh, t.bl = parse_vol(bv); t.sh, t.sl = parse_vol(sv)
  if not (t.bh and t.sh) then corrupt('bucket volumes ' .. ssub(m, 1, 40)) end
  k = {B = tonumber(b), t = t, hi = hi, lo = lo,
       first = {ts = tonumber(fts), seq = tonumber(fseq), price = fp, id = fid},
       last = {ts = tonumber(lts), seq = tonumber(lseq), price = lp, id = lid}}
  if not fresh and LONG.pm then LONG.pm[m] = k end
  return k
end

-- A bucket member's totals only (read-only: shared by the call), by a pattern
-- of its first five fields: ranges need no more.
function LONG.tot(m)
  local t = LONG.tm and LONG.tm[m]
  if t then return t end
  local pk = LONG.pm and LONG.pm[m]
  if pk then return pk.t end
  local nb, ns, bv, sv = smatch(m, '^%-?%d+ (%d+) (%d+) (%S+) (%S+) ')
  t = new_totals()
  t.b, t.s = tonumber(nb), tonumber(ns)
  t.bh, t.bl = parse_vol(bv); t.sh, t.sl = parse_vol(sv)
  if not (t.b and t.s and t.bh and t.sh) then corrupt('unparsable bucket ' .. ssub(m, 1, 40)) end
  if LONG.tm then LONG.tm[m] = t end
  return t
end

-- Per call and token (apply_trades, read_window): the memos above, and what is
-- read whole once and then served from memory: a bucket set of at most SNAP
-- members (LONG.bk: ZCARD + one ZRANGE instead of a ZRANGEBYSCORE per range
-- and the last bucket's read), a deque of at most DQ members (LONG.deq: the
-- windows' high / low and the buckets' extremes offered to it, without probes).
-- Every write the library makes to them keeps the copies in step.
LONG.SNAP, LONG.DQ = 128, 64
function LONG.begin()
  LONG.pm, LONG.tm, LONG.rm, LONG.sn, LONG.dq = {}, {}, {}, {}, {}
end

-- the snapshot of bucket set `key` ({key, sc = scores, m = members}, ascending),
-- or false when it holds more than SNAP members (or outside LONG.begin's call);
-- with `peek`, only one read already (a merge of a call's few trades needs the
-- last bucket, not the whole set)
function LONG.bk(key, peek)
  local sn = LONG.sn and LONG.sn[key]
  if sn ~= nil or not LONG.sn or peek then return sn or false end
  sn = false
  if redis.call('ZCARD', key) <= LONG.SNAP then
    local got = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    sn = {key = key, sc = {}, m = {}}
    for j = 1, #got, 2 do sn.m[#sn.m + 1] = got[j]; sn.sc[#sn.sc + 1] = tonumber(got[j + 1]) end
  end
  LONG.sn[key] = sn
  return sn
end

-- the snapshot's position of score B: index of the first score >= B
function LONG.pos(sn, B)
  local lo, hi = 1, #sn.sc + 1
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if sn.sc[mid] < B then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- the snapshot's position of the first score after s
function LONG.after(sn, s)
  local j = LONG.pos(sn, s)
  if sn.sc[j] == s then j = j + 1 end
  return j
end

function LONG.text(k)
  local t, f, l = k.t, k.first, k.last
  return table.concat({fmt_int(k.B), fmt_int(t.b), fmt_int(t.s), fmt_vol(t.bh, t.bl),
    fmt_vol(t.sh, t.sl), k.hi, k.lo, fmt_int(f.ts), fmt_int(f.seq), f.price, f.id,
    fmt_int(l.ts), fmt_int(l.seq), l.price, l.id}, ' ')
end

-- totals u += sign * v
function LONG.sum(u, v, sign)
  local p = new_totals()
  p.b = u.b + sign * v.b; p.s = u.s + sign * v.s
  p.bh, p.bl = u.bh + sign * v.bh, u.bl + sign * v.bl
  p.sh, p.sl = u.sh + sign * v.sh, u.sl + sign * v.sl
  while p.bl >= NANO do p.bl = p.bl - NANO; p.bh = p.bh + 1 end
  while p.bl < 0 do p.bl = p.bl + NANO; p.bh = p.bh - 1 end
  while p.sl >= NANO do p.sl = p.sl - NANO; p.sh = p.sh + 1 end
  while p.sl < 0 do p.sl = p.sl + NANO; p.sh = p.sh - 1 end
  return p
end

-- the buckets with lo < B <= hi, summed (at most (hi - lo) / r of them): from
-- the snapshot, or one ZRANGEBYSCORE (the same range asked twice in a call, as
-- coinciding boundaries do, is read once). A new totals table.
function LONG.range(key, lo, hi)
  local sn, ms = LONG.bk(key), nil
  if sn then
    ms = {}
    local j = LONG.after(sn, lo)
    while sn.sc[j] and sn.sc[j] <= hi do ms[#ms + 1] = sn.m[j]; j = j + 1 end
  else
    local rk = key .. ' ' .. fmt_int(lo) .. ' ' .. fmt_int(hi)
    ms = LONG.rm and LONG.rm[rk]
    if not ms then
      ms = redis.call('ZRANGEBYSCORE', key, '(' .. fmt_int(lo), fmt_int(hi))
      if LONG.rm then LONG.rm[rk] = ms end
    end
  end
  -- summed in place, the nano parts carried once at the end: the same exact
  -- totals as a LONG.sum per bucket (every part an integer far below 2^53)
  local b, s, bh, bl, sh, sl = 0, 0, 0, 0, 0, 0
  for _, m in ipairs(ms) do
    local u = LONG.tot(m)
    b, s, bh, bl, sh, sl = b + u.b, s + u.s, bh + u.bh, bl + u.bl, sh + u.sh, sl + u.sl
  end
  local cb, cs = floor(bl / NANO), floor(sl / NANO)
  return {b = b, s = s, bh = bh + cb, bl = bl - cb * NANO, sh = sh + cs, sl = sl - cs * NANO}
end

-- entered items (raw elements or parsed entries) as parsed entries
function LONG.entries(items)
  local xs = {}
  for j, it in ipairs(items or {}) do
    local x = it
    if type(it) == 'string' then
      x = parse(it)
      if not x then corrupt('unparsable list element ' .. ssub(it, 1, 40)) end
    end
    xs[j] = x
  end
  return xs
end

-- Stored state of the long windows `lw`: per window {t, from, cf} or nil (not
-- carried, or written as of another instant than `at`: a writer without long
-- windows moved the token since, and what entered then is in no bucket), and
-- the coverage C (-huge: complete) with the longest carried window. `A`: the
-- aggregates as a map (lib/state.lua, hash_map), read before this call wrote any.
function LONG.load(K, lw, at, A)
  local f, F = {}, LONG.F
  for _, w in ipairs(lw) do for _, m in ipairs(F) do f[#f + 1] = w[m] or (w.label .. ':' .. m) end end
  local got = f
  if A then for j, name in ipairs(f) do got[j] = A[name] or false end  -- (load_state's map)
  else got = redis.call('HMGET', K[3], unpack(f)) end
  local ls, c, longest = {}, -math.huge, nil
  for i, w in ipairs(lw) do
    local a, t = #F * (i - 1), new_totals()
    t.b, t.s = tonumber(got[a + 1]), tonumber(got[a + 2])
    t.bh, t.bl = parse_vol(got[a + 3]); t.sh, t.sl = parse_vol(got[a + 4])
    local from = tonumber(got[a + 5])
    if t.b and t.s and t.bh and t.sh and from and tonumber(got[a + 7]) == at then
      ls[i] = {t = t, from = from, cf = tonumber(got[a + 6])}
      longest = w.ms
      if ls[i].cf then c = max(c, ls[i].cf - w.ms) end
    end
  end
  return ls, c, longest
end

-- Totals of window w as of `at` from its stored state `l` (nil: none, empty)
-- moved to start s: minus the stored buckets s passed (none read when all left)
function LONG.moved(K, l, w, s)
  if not l then return new_totals() end
  if s <= l.from then return LONG.sum(new_totals(), l.t, 1) end
  if s >= l.from + w.ms then return new_totals() end
  return LONG.sum(l.t, LONG.range(K[12], l.from, s), -1)
end

-- Metrics of one long window with start s (METRICS order): totals t, stored
-- buckets (the first after s from the call's snapshot when a range read took it,
-- else one ZRANGEBYSCORE: reading a whole set for it cost more) and deques
-- after s, and `xs` (entries not in the buckets yet: a
-- read's pending ones, in order, all after every stored one); with the
-- screener's sets `sk`, makers.. from them and `ex` (pending(): the pending
-- trades' traders' stored scores).
function LONG.metrics(K, sk, s, t, xs, ex, at, last)
  local lo = '(' .. fmt_int(s)
  local open, close, first
  local sn = LONG.bk(K[12], true)
  if sn then
    first = sn.m[LONG.after(sn, s)]
    last = last or sn.m[#sn.m]
  else
    first = redis.call('ZRANGEBYSCORE', K[12], lo, '+inf', 'LIMIT', 0, 1)[1]
  end
  if first then open = LONG.parse(first).first.price end
  for _, x in ipairs(xs) do
    if x.ts > s then
      t = LONG.sum(t, {b = x.side == 'b' and 1 or 0, s = x.side == 'b' and 0 or 1,
        bh = x.side == 'b' and x.qhi or 0, bl = x.side == 'b' and x.qlo or 0,
        sh = x.side == 'b' and 0 or x.qhi, sl = x.side == 'b' and 0 or x.qlo}, 1)
      open = open or x.price
      close = x.price
    end
  end
  if not close and first then  -- the last bucket's last trade (`last`: read by the caller)
    close = LONG.parse(last or redis.call('ZRANGE', K[12], -1, -1)[1]).last.price
  end
  local out = {fmt_int(t.b), fmt_int(t.s), fmt_vol(t.bh, t.bl), fmt_vol(t.sh, t.sl), volume(t),
               open or false, close or false, open and sfmt('%.17g', (tonumber(close) - tonumber(open)) / tonumber(open) * 100)
                 or false}
  if sk then
    local m = {}
    for k = 1, 3 do m[k] = redis.call('ZCOUNT', sk[k], lo, '+inf') end
    for k = 4, 5 do
      local y = LONG.first(K[9 + k], s)
      m[k] = y and member_price(y) or false
    end
    if ex then screener_add({m}, ex.xs, ex.stored, {s}, at) end
    for k = 1, 3 do out[#out + 1] = m[k] end
    out[#out + 1] = m[4]; out[#out + 1] = m[5]
  end
  return out, t
end

-- A bucket deque read whole ({key, sc, m}, ascending), or false when it holds
-- more than DQ members; kept in step by LONG.offer.
function LONG.deq(key)
  local d = LONG.dq and LONG.dq[key]
  if d ~= nil or not LONG.dq then return d or false end
  local got = redis.call('ZRANGE', key, 0, LONG.DQ, 'WITHSCORES')
  d = false
  if #got <= 2 * LONG.DQ then
    d = {key = key, sc = {}, m = {}, init = {}}
    for j = 1, #got, 2 do
      d.m[#d.m + 1] = got[j]; d.sc[#d.sc + 1] = tonumber(got[j + 1]); d.init[got[j]] = true
    end
  end
  LONG.dq[key] = d
  return d
end

-- The first member of a bucket deque after s: from the whole deque, else read.
function LONG.first(key, s)
  local d = LONG.deq(key)
  if d then
    return d.m[LONG.after(d, s)]
  end
  return redis.call('ZRANGEBYSCORE', key, '(' .. fmt_int(s), '+inf', 'LIMIT', 0, 1)[1]
end

-- Bucket B's extreme p offered to the deque of kind k (deque_one, lib/screener.lua,
-- with ts = B): with the whole deque in memory, no probe: the members it beats
-- (right before it) leave, it goes in, in memory; LONG.flush writes the difference.
function LONG.offer(key, k, B, p)
  local d = LONG.deq(key)
  if not d then return deque_one(key, k, {ts = B, price = p}) end
  local j = LONG.pos(d, B)  -- the first member at or after B
  if d.m[j] and not beats(k, p, member_price(d.m[j])) then return end
  local c = j - 1  -- members before B; one at B is beaten (it was no better) and leaves
  if d.sc[j] == B then c = j end
  local lo = c + 1
  while lo > 1 and not beats(k, member_price(d.m[lo - 1]), p) do lo = lo - 1 end
  for _ = lo, c do table.remove(d.m, lo); table.remove(d.sc, lo) end
  table.insert(d.m, lo, fmt_int(B) .. ' ' .. p); table.insert(d.sc, lo, B)
  d.dirty = true
end

-- The bucket writes of LONG.merge (one ZREM, one ZADD) and the deques' changes
-- made in memory (members gone: one ZREM; new: one ZADD)
function LONG.flush(K)
  local w = LONG.w
  if w and #w.rem > 0 then chunked('ZREM', K[12], w.rem) end
  if w and #w.add > 0 then chunked('ZADD', K[12], w.add) end
  LONG.w = nil
  for k = 13, 14 do
    local d = LONG.dq and LONG.dq[K[k]]
    if d and d.dirty then
      local now, rem, add = {}, {}, {}
      for j, m in ipairs(d.m) do
        now[m] = true
        if not d.init[m] then add[#add + 1] = d.sc[j]; add[#add + 1] = m end
      end
      for m in pairs(d.init) do if not now[m] then rem[#rem + 1] = m end end
      if #rem > 0 then chunked('ZREM', K[k], rem) end
      if #add > 0 then chunked('ZADD', K[k], add) end
      d.init, d.dirty = now, false
    end
  end
end

-- The long windows as of `at`, read-only (read_window.lua): the stored sums
-- minus the buckets that left, plus the entered trades `items` not written
-- yet (ts in (last_update, at]). A window the writers do not carry counts
-- only those (partial from the bucket after last_update). Returns per window
-- {label, complete_from|false, metrics...} flattened, as answer() does.
function LONG.read(K, lw, r, lu, at, items, ex, sk, A)
  local ls, c = LONG.load(K, lw, lu, A)
  local xs, out = LONG.entries(items), {}
  for i, w in ipairs(lw) do
    local l = ls[i]
    local cov = l and c or LONG.ceil(lu, r)
    local s = max(LONG.ceil(at - w.ms, r), cov)
    local m = LONG.metrics(K, sk, s, LONG.moved(K, l, w, s), xs, ex, at)
    local cf = cov + w.ms
    out[#out + 1] = w.label; out[#out + 1] = cf > at and fmt_int(cf) or false
    for _, v in ipairs(m) do out[#out + 1] = v end
  end
  return out
end

-- One bucket's update by the entries `d` (all of bucket B): read, merge, write.
-- `top` = {B, member} of the last bucket before the call: in-order trades land in
-- it or after it, known without a read. Returns the bucket's new member.
function LONG.merge(K, B, d, sk, top)
  local old
  local sn = LONG.bk(K[12], true)
  if top and B == top[1] then old = {top[2]}
  elseif top and B > top[1] then old = {}
  elseif sn then
    local j = LONG.pos(sn, B)
    old = {sn.sc[j] == B and sn.m[j] or nil}
  else old = redis.call('ZRANGEBYSCORE', K[12], B, B) end
  local k, hi, lo
  local w = LONG.w  -- the writes, flushed by LONG.store
  if old[1] then
    k = LONG.parse(old[1], true)
    w.rem[#w.rem + 1] = old[1]
    hi, lo = k.hi, k.lo
  end
  for _, x in ipairs(d) do
    if not k then
      k = {B = B, t = new_totals(), hi = x.price, lo = x.price, first = x, last = x}
    else
      if cmp(x, k.first) < 0 then k.first = x end
      if cmp(x, k.last) > 0 then k.last = x end
      if beats(1, x.price, k.hi) then k.hi = x.price end
      if beats(-1, x.price, k.lo) then k.lo = x.price end
    end
    addq(k.t, x.side, x.qhi, x.qlo, 1)
  end
  local text = LONG.text(k)
  -- k is text parsed (the same numbers and prices): LONG.metrics' close needs no parse
  if LONG.pm then LONG.pm[text] = k end
  w.add[#w.add + 1] = B; w.add[#w.add + 1] = text
  LONG.rm = {}
  if sn then  -- the snapshot in step
    local j = LONG.pos(sn, B)
    if sn.sc[j] == B then sn.m[j] = text
    else table.insert(sn.sc, j, B); table.insert(sn.m, j, text) end
  end
  if sk then  -- a bucket's extremes only grow: offered to the deques when they did
    if k.hi ~= hi then LONG.offer(K[13], 1, B, k.hi) end
    if k.lo ~= lo then LONG.offer(K[14], -1, B, k.lo) end
  end
  return text
end

-- Entries `xs` into their buckets B > after (earlier ones no window counts): one
-- read of the last bucket, so in-order trades merge into it without another.
-- Returns the last bucket's text (nil: none) and how many buckets were written.
function LONG.store(K, xs, r, after, sk)
  local byb, order = {}, {}
  for _, x in ipairs(xs) do
    local B = LONG.ceil(x.ts, r)
    if B > after then
      if not byb[B] then byb[B] = {}; order[#order + 1] = B end
      local d = byb[B]
      d[#d + 1] = x
    end
  end
  local top
  local sn = LONG.bk(K[12], true)
  if sn then top = sn.m[1] and {sn.sc[#sn.sc], sn.m[#sn.m]}
  else
    local got = redis.call('ZRANGE', K[12], -1, -1, 'WITHSCORES')
    top = got[1] and {tonumber(got[2]), got[1]}
  end
  local last = top and top[2]
  LONG.w = {rem = {}, add = {}}
  for _, B in ipairs(order) do
    local text = LONG.merge(K, B, byb[B], sk, top)
    if not top or B >= top[1] then top = {B, text}; last = text end
  end
  LONG.flush(K)
  return last, #order
end

-- The members of the bucket set (and with `dq` its deques) at or before `lb` out
function LONG.trim(K, lb, dq)
  for k = 12, dq and 14 or 12 do
    redis.call('ZREMRANGEBYSCORE', K[k], '-inf', fmt_int(lb))
    local d = LONG[k == 12 and 'sn' or 'dq']; d = d and d[K[k]]
    if d and d.key == K[k] then
      for _ = 1, LONG.after(d, lb) - 1 do table.remove(d.sc, 1); table.remove(d.m, 1) end
    end
  end
  LONG.rm = {}
end

-- The long windows' part of an apply: `items` entered the windows in this
-- call, the state moved from at0 (nil: a new token) to st.at. `rebuilt`: the
-- token was counted again from its list (which reaches back only to the
-- longest exact window): the long windows start over, partial. `keep`: the
-- buckets the previous windows still need start after it (lib/prev.lua).
-- Its fields of the aggregates go into st.hset / st.hdel (apply_trades' write
-- sends them with its own), only those that differ from the stored ones (st.agg)
-- when the call read them. Returns each window's totals as of st.at.
function LONG.step(K, st, lw, r, at0, items, rebuilt, fresh_ttl, exact_from, keep, was_keep)
  local ls, c, longest = LONG.load(K, lw, at0, st.agg)
  if rebuilt then ls, c = {}, LONG.ceil(st.at, r) end
  if at0 and not rebuilt then
    for i in ipairs(lw) do
      -- newly carried: the buckets are complete after C only (moved by a writer
      -- without long windows, none is carried: complete from now on only)
      if not ls[i] then c = max(c, longest and LONG.ceil(at0 - longest, r) or LONG.ceil(at0, r)) end
    end
  end
  local xs = LONG.entries(items)
  -- nothing entered, no window moved or completed: nothing changes (the janitor's usual call)
  local still, was = #xs == 0 and not rebuilt, math.huge
  for i, w in ipairs(lw) do
    local l = ls[i]
    if l then was = min(was, l.from) end
    if not l or l.from ~= max(LONG.ceil(st.at - w.ms, r), c) or (l.cf and l.cf <= st.at) then
      still = false
    end
  end
  -- the aggregates' fields to write go with the apply's own (st.hset, st.hdel:
  -- one HSET per call); with the stored values (st.agg) only those that change
  local A, set, del = st.agg, st.hset, st.hdel
  local function put(name, v)
    if not (A and A[name] == v) then set[#set + 1] = name; set[#set + 1] = v end
  end
  local function drop(name)
    if not A or A[name] then del[#del + 1] = name end
  end
  if still then  -- only the instant the stored state is as of (totals as stored)
    local sums = {}
    for i, w in ipairs(lw) do
      put(w.label .. ':at', fmt_int(st.at))
      sums[i] = ls[i].t
    end
    return sums
  end
  local starts, sums, bound = {}, {}, math.huge
  for i, w in ipairs(lw) do
    local s = max(LONG.ceil(st.at - w.ms, r), c)
    local t
    -- a window not carried yet starts from the buckets after s (before this call's)
    if ls[i] then t = LONG.moved(K, ls[i], w, s) else t = LONG.range(K[12], s, s + w.ms + r) end
    for _, x in ipairs(xs) do if x.ts > s then addq(t, x.side, x.qhi, x.qlo, 1) end end
    starts[i], sums[i], bound = s, t, min(bound, s)
  end
  -- this call's entered trades into their buckets (those no window will count skipped)
  local kb = min(bound, keep or bound)
  local last, merged = LONG.store(K, xs, r, kb, st.sk)
  -- what left the longest long window (and every previous window: `keep`): members
  -- at or before it are never counted again (every read is of a range after a start
  -- of this call's, or later), so they are trimmed lazily, when kb passes a multiple
  -- of 16 buckets (at most 16 extra buckets kept; a call in 16 trims). `was_keep`:
  -- the previous windows' kb at the last write (nil: unknown, trim now).
  local lazy = 16 * r
  local wkb = was
  if keep then wkb = was_keep and min(was, was_keep) or math.huge end
  if floor(kb / lazy) ~= floor(wkb / lazy) or wkb == math.huge or bound > exact_from then
    LONG.trim(K, kb, true)
    if st.sk then  -- the trader sets serve the exact windows too
      local tb = fmt_int(min(bound, exact_from))
      for k = 1, 3 do redis.call('ZREMRANGEBYSCORE', st.sk[k], '-inf', tb) end
    end
  end
  for i, w in ipairs(lw) do
    local s = starts[i]
    local m = LONG.metrics(K, st.sk, s, sums[i], {}, nil, st.at, last)
    for j, name in ipairs(METRICS) do
      local v = m[j]
      if v == nil then break end
      -- (ZCOUNT's counts as the stored text: a number never equals it, and was rewritten)
      if type(v) == 'number' then v = fmt_int(v) end
      if v then put(w[name], v) else drop(w[name]) end
    end
    put(w.label .. ':from', fmt_int(s))
    put(w.label .. ':at', fmt_int(st.at))
    local cf = c + w.ms
    if cf > st.at then put(w.complete_from, fmt_int(cf)) else drop(w.complete_from) end
  end
  -- buckets expire twice the longest window after the last trade (a key written
  -- without new trades may have been emptied and made again: the token's TTL + w)
  if not fresh_ttl and merged == 0 then return sums end
  local L = lw[#lw].ms
  local ttl = 2 * L
  if not fresh_ttl then
    local left = redis.call('PTTL', K[4])
    ttl = (type(left) == 'number' and left > 0) and left + L or L
  end
  for k = 12, 14 do redis.call('PEXPIRE', K[k], ttl) end
  return sums
end

function LONG.del(K)
  redis.call('DEL', K[12], K[13], K[14])
  if K[15] then redis.call('DEL', K[15], K[16]) end  -- prev_makers' (lib/pmakers.lua)
end
