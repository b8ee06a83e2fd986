-- lib/screener.lua: makers, buyers, sellers, high and low of every window
-- (CONTRACT §2b), from five sorted sets per token that hold no per-window
-- state, so every window (and a window added later) reads them the same way:
--   SK[1] tradeagg:{A}:makers   trader digest -> ts of its latest trade that entered
--   SK[2] tradeagg:{A}:buyers   the same over buys
--   SK[3] tradeagg:{A}:sellers  the same over sells
--   SK[4] tradeagg:{A}:high     "<ts> <price>", score ts: the trades no later trade
--   SK[5] tradeagg:{A}:low      prices at least as high (high) / low (low): prices
--                               strictly fall (rise) with ts, one element per ts
-- A trade is fed in when it enters the windows (ts <= the state's instant):
-- trades stamped later wait in the list until the slide takes them in, so a
-- trader's score is never ahead of the windows. Then, at instant `at`, window
-- w holds makers = ZCOUNT makers (at - w, +inf) (a trader traded inside w iff
-- its latest trade is inside), and high = the first element of `high` after
-- at - w (its earlier elements are beaten by a later one). What left the
-- longest window is removed by score (ZREMRANGEBYSCORE: as many as left).
-- A trade of no known trader (an element of an earlier release) counts in
-- high and low, not in makers, buyers or sellers.
--@include lib/entry.lua

local SCR_METRICS = 5  -- makers, buyers, sellers, high, low (METRICS' last five)
local SCR_ARGS = 1000  -- traders per ZMSCORE (pending)

-- -1, 0, 1: exact order of two plain decimals (validation.plain: no exponent,
-- no sign); compared as digit strings, never as doubles (40 digits allowed)
local function dec_cmp(a, b)
  if a == b then return 0 end
  local ai, af = smatch(a, '^0*(%d*)%.?(%d*)$')
  local bi, bf = smatch(b, '^0*(%d*)%.?(%d*)$')
  if not (ai and bi) then  -- not plain (hand-made): as numbers
    local x, y = tonumber(a), tonumber(b)
    if x == y then return 0 end
    return x < y and -1 or 1
  end
  if #ai ~= #bi then return #ai < #bi and -1 or 1 end
  if ai ~= bi then return id_lt(ai, bi) and -1 or 1 end
  local n = max(#af, #bf)
  af = af .. string.rep('0', n - #af); bf = bf .. string.rep('0', n - #bf)
  if af == bf then return 0 end
  return id_lt(af, bf) and -1 or 1
end

-- price p beats q in a deque of kind k (1: high, -1: low)
local function beats(k, p, q) return dec_cmp(p, q) * k > 0 end

local function member_price(m) return smatch(m, ' (%S+)$') end

local function price_at_rank(key, r)
  local m = redis.call('ZRANGE', key, r, r)[1]
  if not m then corrupt('deque ' .. key .. ' shorter than counted') end
  return member_price(m)
end

-- Remove the elements at or before x.ts that x beats or equals: they sit right
-- before x (prices fall with ts): a binary search by rank, one ZREMRANGEBYRANK.
local function pop_beaten(key, k, x)
  local c = redis.call('ZCOUNT', key, '-inf', x.ts)
  if c == 0 or beats(k, price_at_rank(key, c - 1), x.price) then return end
  local lo, hi = 0, c - 1
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if beats(k, price_at_rank(key, mid), x.price) then lo = mid + 1 else hi = mid end
  end
  redis.call('ZREMRANGEBYRANK', key, lo, c - 1)
end

-- One trade into a deque: nothing if a trade at or after its ts is at least
-- as good; else the ones it beats leave and it goes in. Returns whether the
-- deque held nothing at or after x.ts (x is its last element, or beaten by none after).
local function deque_one(key, k, x)
  local y = redis.call('ZRANGEBYSCORE', key, x.ts, '+inf', 'LIMIT', 0, 1)[1]
  if y and not beats(k, x.price, member_price(y)) then return false end
  pop_beaten(key, k, x)
  redis.call('ZADD', key, x.ts, fmt_int(x.ts) .. ' ' .. x.price)
  return not y
end

-- Trades `xs` (in ts order) into the deque of kind k: first their own deque in
-- memory; when it starts after every stored element (in-order trades), the
-- stored ones its first beats leave and it goes in by one ZADD (2 calls when
-- nothing is beaten); else each of it in turn (late trades).
local function deque_add(key, k, xs)
  local own = {}
  for _, x in ipairs(xs) do
    while #own > 0 and not beats(k, own[#own].price, x.price) do own[#own] = nil end
    if not (#own > 0 and own[#own].ts == x.ts) then own[#own + 1] = x end
  end
  if #own == 0 then return end
  local first, last = own[1], redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last == 0 or tonumber(last[2]) < first.ts then
    -- the rest of own is beaten by first, so by whatever stored element beats first
    if #last > 0 and not beats(k, member_price(last[1]), first.price) then pop_beaten(key, k, first) end
    local args = {}
    for j = 1, #own do
      args[#args + 1] = own[j].ts; args[#args + 1] = fmt_int(own[j].ts) .. ' ' .. own[j].price
    end
    chunked('ZADD', key, args)
    return
  end
  for j = 1, #own do deque_one(key, k, own[j]) end
end

-- Helpers of the apply's screener step (lib/slide.lua, screener_step) and of
-- the feed: one table, not one local each (the main chunk is at Lua's 200 locals).
-- PEEK: deque elements read at once for every window's high (low) (extremes,
-- SCR.deque).
local SCR = {PEEK = 32}

function SCR.by_ts(a, b) return a.ts < b.ts end

-- entering items (raw elements or parsed entries) parsed, in ts order
function SCR.items(items)
  local xs = {}
  for j, it in ipairs(items) do
    if type(it) == 'string' then xs[j] = screen_item(it) else xs[j] = it end
  end
  -- stable enough: the deques only need ts order (equal ts are handled there)
  for j = 2, #xs do
    if xs[j].ts < xs[j - 1].ts then table.sort(xs, SCR.by_ts); break end
  end
  return xs
end

-- the trades `xs` into the three trader sets (ZADD GT: each trader's latest ts)
function SCR.traders(sk, xs)
  local all, buys, sells = {}, {}, {}
  for _, x in ipairs(xs) do
    if x.tr ~= '' then
      local ts = x.ts
      all[#all + 1] = ts; all[#all + 1] = x.tr
      local t = x.side == 'b' and buys or sells
      t[#t + 1] = ts; t[#t + 1] = x.tr
    end
  end
  if #all > 0 then chunked('ZADD', sk[1], all, nil, 'GT') end
  if #buys > 0 then chunked('ZADD', sk[2], buys, nil, 'GT') end
  if #sells > 0 then chunked('ZADD', sk[3], sells, nil, 'GT') end
end

-- Feed trades entering the windows (raw elements or parsed entries) into the
-- five sets (rebuilds; an apply's step is screener_step). Returns whether
-- anything was fed.
local function screener_feed(sk, items)
  if #items == 0 then return false end
  local xs = SCR.items(items)
  SCR.traders(sk, xs)
  deque_add(sk[4], 1, xs)
  deque_add(sk[5], -1, xs)
  return true
end

local function screener_del(sk) redis.call('DEL', unpack(sk)) end

-- Trades entered in memory only (a read ahead of last_update): per trader
-- digest, its stored score in each of the three sets, fetched once.
local function pending(sk, items)
  local xs, seen, trs = {}, {}, {}
  for j, it in ipairs(items) do
    local x = it
    if type(it) == 'string' then x = screen_item(it) end
    xs[j] = x
    if x.tr ~= '' and not seen[x.tr] then seen[x.tr] = true; trs[#trs + 1] = x.tr end
  end
  local stored = {{}, {}, {}}
  if #trs > 0 then
    for i = 1, 3 do
      for from = 1, #trs, SCR_ARGS do
        local part = {}
        for j = from, min(from + SCR_ARGS - 1, #trs) do part[#part + 1] = trs[j] end
        local got = redis.call('ZMSCORE', sk[i], unpack(part))
        for j, tr in ipairs(part) do stored[i][tr] = tonumber(got[j]) end
      end
    end
  end
  return {xs = xs, stored = stored}
end

-- high (k = 4) or low (5) of every window: one read of the deque's first SCR.PEEK
-- elements inside the longest window serves the windows whose answer is among
-- them (nested windows: usually all); a window past them reads its own.
local function extremes(key, ws, at, out, k, froms)
  local got = redis.call('ZRANGEBYSCORE', key, '(' .. fmt_int(at - ws[#ws].ms), '+inf',
                         'WITHSCORES', 'LIMIT', 0, SCR.PEEK)
  -- each score parsed once, and each member's price (nested windows often share one)
  local sc, last, price = {}, nil, false
  for j = 2, #got, 2 do sc[j] = tonumber(got[j]) end
  for i in ipairs(ws) do
    local from, found = froms[i], nil
    for j = 1, #got, 2 do
      if sc[j + 1] > from then found = got[j]; break end
    end
    if not found and #got == 2 * SCR.PEEK then
      found = redis.call('ZRANGEBYSCORE', key, '(' .. fmt_int(from), '+inf', 'LIMIT', 0, 1)[1]
    end
    if found ~= last then last, price = found, found and member_price(found) or false end
    out[i][k] = price
  end
end

-- Count the trades `xs` into `out` (per window {makers, buyers, sellers,
-- high|false, low|false}): those inside window i (froms[i] < ts <= at), each
-- trader once per set, and only when its stored latest ts in set k
-- (stored[k][trader], nil: none) does not count it already. From empty sets and
-- zero counts, this is the count from scratch of a damaged token's reads.
local function screener_add(out, xs, stored, froms, at)
  for i, m in ipairs(out) do
    local from, counted = froms[i], {{}, {}, {}}
    for _, x in ipairs(xs) do
      if x.ts > from and x.ts <= at then
        for k = 1, 3 do
          if x.tr ~= '' and (k == 1 or (k == 2) == (x.side == 'b')) and not counted[k][x.tr] then
            counted[k][x.tr] = true
            local s = stored[k][x.tr]
            if not s or s <= from then m[k] = m[k] + 1 end
          end
        end
        if not m[4] or beats(1, x.price, m[4]) then m[4] = x.price end
        if not m[5] or beats(-1, x.price, m[5]) then m[5] = x.price end
      end
    end
  end
  return out
end

-- Every window's start as counted at `at` (partial windows, cf[i] = their
-- complete_from, count what came after cf[i] - w) and an empty answer per window.
function SCR.froms(ws, at, cf)
  local out, froms = {}, {}
  for i, w in ipairs(ws) do
    out[i], froms[i] = {}, at - w.ms
    local c = cf and cf[i]
    if c and c - w.ms > froms[i] then froms[i] = c - w.ms end
  end
  return out, froms
end

-- makers (k = 1), buyers (2), sellers (3) of every window (out[i][k]): one
-- ZCOUNT per window and set (reading the scores to count them in Lua, even 16
-- of them, cost more: the reply and its Lua strings)
function SCR.count(sk, froms, out)
  for i, from in ipairs(froms) do
    local lo = '(' .. fmt_int(from)
    for k = 1, 3 do out[i][k] = redis.call('ZCOUNT', sk[k], lo, '+inf') end
  end
end

-- The deque `key` of kind k (1: high, -1: low) after this call, in memory: one
-- read of its members after `upto` (the longest window's start), at most PEEK
-- (the read extremes() makes), merged with the trades `xs` (in ts order; those
-- at or before `upto` are counted by no window and left out), then at most one
-- ZREM (what they beat) and one ZADD (what stays of them); out[i][slot] = high
-- (low) of window i: the first element after froms[i]. Members are read
-- without scores and parsed only where needed (a ts by binary search, a price
-- where a trade is compared): the reply's scores and their Lua strings cost
-- more than the few parses. Elements at or before `upto` are the trim's (the
-- caller's ZREMRANGEBYSCORE when `trim`). A deque of random prices holds
-- ~ln(trades) elements. Returns false (nothing written) when PEEK members lie
-- after `upto`: the caller takes the stored path (deque_add, extremes).
function SCR.deque(key, k, xs, upto, froms, out, slot, trim)
  local got = redis.call('ZRANGEBYSCORE', key, '(' .. fmt_int(upto), '+inf', 'LIMIT', 0, SCR.PEEK)
  if #got == SCR.PEEK then return false end
  -- the new deque: qm[a] its stored member (false: a trade), qt[a] / qp[a] its
  -- ts / price (nil until needed, for stored ones)
  local qm, qt, qp, gone = {}, {}, {}, {}
  local function ts(a)
    local t = qt[a]
    if not t then t = tonumber(smatch(qm[a], '^%-?%d+')); qt[a] = t end
    return t
  end
  local function price(a)
    local p = qp[a]
    if not p then p = member_price(qm[a]); qp[a] = p end
    return p
  end
  for a = 1, #got do qm[a] = got[a] end
  local n, j = #got, 1
  while j <= #xs and xs[j].ts <= upto do j = j + 1 end
  if j <= #xs then
    -- the stored elements before the first trade stay as they are (but for
    -- those it beats, at the end of them); from the first at or after it on,
    -- stored elements and trades merge by ts (a trade before a stored element
    -- of its ts, so that of equal prices the stored one stays, as in
    -- deque_one) through deque_add's rule. A stored element beats the stored
    -- ones after it: prices are compared only where a trade is involved.
    local lo, hi = 1, n + 1
    while lo < hi do
      local mid = floor((lo + hi) / 2)
      if ts(mid) < xs[j].ts then lo = mid + 1 else hi = mid end
    end
    local rest = {}
    for a = lo, n do rest[#rest + 1] = a end
    local rt = {}
    for r, a in ipairs(rest) do rt[r] = ts(a) end
    local rm = {}
    for r, a in ipairs(rest) do rm[r] = qm[a] end
    n = lo - 1
    local r = 1
    while j <= #xs or r <= #rest do
      local t, p, m
      if j <= #xs and (r > #rest or xs[j].ts <= rt[r]) then
        t, p, m = xs[j].ts, xs[j].price, false; j = j + 1
      else
        t, p, m = rt[r], nil, rm[r]; r = r + 1
      end
      while n > 0 and not (m and qm[n]) do
        if not p then p = member_price(m) end
        if beats(k, price(n), p) then break end
        if qm[n] then gone[#gone + 1] = qm[n] end
        n = n - 1
      end
      if n > 0 and ts(n) == t then
        if m then gone[#gone + 1] = m end
      else
        n = n + 1; qm[n], qt[n], qp[n] = m, t, p
      end
    end
  end
  local add = {}
  for a = 1, n do
    if not qm[a] then add[#add + 1] = qt[a]; add[#add + 1] = fmt_int(qt[a]) .. ' ' .. qp[a] end
  end
  if #gone > 0 then redis.call('ZREM', key, unpack(gone)) end
  if #add > 0 then chunked('ZADD', key, add) end
  -- a trade now first after `upto` may beat elements at or before it, left
  -- untrimmed: they go (prices fall with ts all along the deque, for pop_beaten)
  if n > 0 and not qm[1] and not trim then redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt_int(upto)) end
  for i, from in ipairs(froms) do
    local lo, hi = 1, n + 1
    while lo < hi do
      local mid = floor((lo + hi) / 2)
      if ts(mid) <= from then lo = mid + 1 else hi = mid end
    end
    out[i][slot] = lo <= n and price(lo) or false
  end
  return true
end

-- Screener metrics of every window of `ws` as of `at`: per window
-- {makers, buyers, sellers, high|false, low|false}. `extra` (pending()) adds
-- trades entered in memory since the sets were written (reads only). `cf`
-- (complete_from per window, nil: complete) bounds a partial window as its
-- seed metrics are: it counts what came after complete_from - w.
local function screener_metrics(sk, ws, at, extra, cf)
  local out, froms = SCR.froms(ws, at, cf)
  extremes(sk[4], ws, at, out, 4, froms)
  extremes(sk[5], ws, at, out, 5, froms)
  SCR.count(sk, froms, out)
  if extra then screener_add(out, extra.xs, extra.stored, froms, at) end
  return out
end

