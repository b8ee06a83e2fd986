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
local SCR_ARGS = 1000  -- score/member pairs * 2 per ZADD

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

local function zadd_gt(key, args)
  for i = 1, #args, SCR_ARGS do
    local part = {}
    for j = i, min(i + SCR_ARGS - 1, #args) do part[#part + 1] = args[j] end
    redis.call('ZADD', key, 'GT', unpack(part))
  end
end

local function by_ts(a, b) return a.ts < b.ts end

-- Feed trades entering the windows (raw elements or parsed entries) into the
-- five sets. Returns whether anything was fed.
local function screener_feed(sk, items)
  if #items == 0 then return false end
  local xs, all, buys, sells = {}, {}, {}, {}
  for j, it in ipairs(items) do
    local x = it
    if type(it) == 'string' then x = screen_item(it) end
    xs[j] = x
    if x.tr ~= '' then
      local ts = x.ts
      all[#all + 1] = ts; all[#all + 1] = x.tr
      local t = x.side == 'b' and buys or sells
      t[#t + 1] = ts; t[#t + 1] = x.tr
    end
  end
  -- stable enough: deque_add only needs ts order (equal ts are handled there)
  local sorted = true
  for j = 2, #xs do if xs[j].ts < xs[j - 1].ts then sorted = false; break end end
  if not sorted then table.sort(xs, by_ts) end
  if #all > 0 then zadd_gt(sk[1], all) end
  if #buys > 0 then zadd_gt(sk[2], buys) end
  if #sells > 0 then zadd_gt(sk[3], sells) end
  deque_add(sk[4], 1, xs)
  deque_add(sk[5], -1, xs)
  return true
end

-- what left every window (ts <= `until`) out of the five sets (from set
-- `first` on: with long windows, lib/long.lua trims the trader sets)
local function screener_trim(sk, upto, first)
  local bound = fmt_int(upto)
  for i = first or 1, 5 do redis.call('ZREMRANGEBYSCORE', sk[i], '-inf', bound) end
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

local PEEK = 32  -- deque elements read at once for every window's high (low)

-- high (k = 4) or low (5) of every window: one read of the deque's first PEEK
-- elements inside the longest window serves the windows whose answer is among
-- them (nested windows: usually all); a window past them reads its own.
local function extremes(key, ws, at, out, k, froms)
  local got = redis.call('ZRANGEBYSCORE', key, '(' .. fmt_int(at - ws[#ws].ms), '+inf',
                         'WITHSCORES', 'LIMIT', 0, PEEK)
  for i, w in ipairs(ws) do
    local from, found = froms[i], nil
    for j = 1, #got, 2 do
      if tonumber(got[j + 1]) > from then found = got[j]; break end
    end
    if not found and #got == 2 * PEEK then
      found = redis.call('ZRANGEBYSCORE', key, '(' .. fmt_int(from), '+inf', 'LIMIT', 0, 1)[1]
    end
    out[i][k] = found and member_price(found) or false
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

-- Screener metrics of every window of `ws` as of `at`: per window
-- {makers, buyers, sellers, high|false, low|false}. `extra` (pending()) adds
-- trades entered in memory since the sets were written (reads only). `cf`
-- (complete_from per window, nil: complete) bounds a partial window as its
-- seed metrics are: it counts what came after complete_from - w.
local function screener_metrics(sk, ws, at, extra, cf)
  local out, froms = {}, {}
  for i, w in ipairs(ws) do
    out[i], froms[i] = {}, at - w.ms
    local c = cf and cf[i]
    if c and c - w.ms > froms[i] then froms[i] = c - w.ms end
  end
  extremes(sk[4], ws, at, out, 4, froms)
  extremes(sk[5], ws, at, out, 5, froms)
  for i in ipairs(ws) do
    local lo = '(' .. fmt_int(froms[i])
    for k = 1, 3 do out[i][k] = redis.call('ZCOUNT', sk[k], lo, '+inf') end
  end
  if extra then screener_add(out, extra.xs, extra.stored, froms, at) end
  return out
end

