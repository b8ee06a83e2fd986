-- lib/pmakers.lua: prev_makers, the distinct traders of every window's previous
-- window (CONTRACT §2b, lib/prev.lua), exact at bucket resolution r, with memory
-- O(traders x windows) and at most three ZCOUNTs per window and call.
-- In buckets b = ceil(ts / r), window w (W = w / r buckets) has at `at` the
-- previous window (p0, p1], p1 = ceil((at - w) / r), p0 = p1 - W.
-- Per window and trader, a *thinned* list of the buckets of its trades that
-- entered: a middle point x_j goes when x_{j+1} - x_{j-1} < W. That never
-- changes whether a range (p, p + W] holds one of the trader's points (a range
-- holding x_j but not x_{j-1} starts at or after x_{j-1}, so it reaches
-- x_{j+1}), and leaves at most two points, consecutive, in any such range. So
--   prev_makers = #points in (p0, p1] - #consecutive pairs with both inside,
-- and a pair (a, c) with c - a < W (no other pair fits in one range) has both
-- inside exactly when c - W <= p0 < a: #(pairs with c - W <= p0) - #(pairs with
-- a <= p0) (the second set lies in the first).
-- Keys (the token's hash tag; they expire with the buckets, lib/long.lua):
--   K[15] tradeagg:{A}:pmakers  sorted set; per window slot s (a number the marker
--         gives the window's label): "<s>p<tr>:<b>" score POS(s, 0, b) (points), "<s>s<tr>:<a>"
--         score POS(s, 1, c - W) and "<s>e<tr>:<a>" score POS(s, 2, a) (the pair
--         (a, c), named by its first point)
--   K[16] tradeagg:{A}:ptraders  hash: trader digest -> its lists, one per slot
--         (";"-separated in slot order, each ","-separated ascending buckets);
--         "~" -> the marker (LONG.M.marker): the state the structure is of, and
--         each window's slot by label.
-- Points at or before a slot's p0 are never counted again (p0 only grows): they
-- leave a trader's lists whenever those are loaded, and a call whose buckets
-- moved sweeps up to SWEEP of the longest window's (their traders loaded); a
-- trader without points is deleted.
-- Only the entered trades after a window's coverage (lib/prev.lua) are points,
-- as only their buckets are in its sums. A token whose marker is not of this
-- state (new, rebuilt, written by a writer without prev_makers) starts the
-- structure over (UNLINK), and lib/prev.lua its sums with it; a window added
-- starts over alone (LONG.M.begin).
-- All of it is the table LONG.M (the main chunks have no local left).
--@include lib/long.lua

LONG.M = {SWEEP = 64, UNIT = 5e13, HALF = 2.5e13, SCAN = 1000, SLOTS = 48, CLEAN = 256}

-- the score of x in slot s, part k (0 points, 1 pair starts, 2 pair ends)
function LONG.M.pos(s, k, x) return (3 * s + k) * LONG.M.UNIT + LONG.M.HALF + x end

-- The marker: "<at> <n> <r> <next> <label>:<slot>,... <orphans> <more>" (the
-- state's instant and list length after the write, the bucket, the next slot
-- number (slots are never reused: a trader's text may hold an old slot's list
-- until it is touched), each window's slot,
-- the slots of windows gone whose members are still being deleted ("-": none,
-- else "3,4"), "+" when the last sweep took as many as it could, else "-")
function LONG.M.marker(at, n, r, pm)
  local slots, orphans = {}, {}
  for label, slot in pairs(pm.slot_of) do slots[#slots + 1] = label .. ':' .. slot end
  table.sort(slots)
  for _, o in ipairs(pm.orphans) do orphans[#orphans + 1] = fmt_int(o) end
  return table.concat({fmt_int(at), fmt_int(n), fmt_int(r), fmt_int(pm.n), table.concat(slots, ','),
                       #orphans > 0 and table.concat(orphans, ',') or '-',
                       pm.swept_all and '+' or '-'}, ' ')
end

-- the marker's parts: at, n, r, next, {label -> slot}, {orphan slots}, more; nil if none
function LONG.M.parse(m)
  local at, n, r, nx, slots, orphans, more =
    smatch(m or '', '^(%-?%d+) (%d+) (%d+) (%d+) (%S+) (%S+) ([%+%-])$')
  if not at then return nil end
  local slot_of, os = {}, {}
  for label, x in string.gmatch(slots, '([^,:]+):(%d+)') do slot_of[label] = tonumber(x) end
  if orphans ~= '-' then for x in string.gmatch(orphans, '%d+') do os[#os + 1] = tonumber(x) end end
  return {at = tonumber(at), n = tonumber(n), r = tonumber(r), next = tonumber(nx),
          slot_of = slot_of, orphans = os, more = more == '+'}
end

-- The structure as loaded (instant at0, list length n0) for windows `wins`: each
-- window's slot (pm.slot[i]) and whether it starts over (pm.fresh[i]: its
-- previous sums too, lib/prev.lua). The whole structure starts over (UNLINK)
-- unless the marker is of this state: a writer without it moved the instant or,
-- at the same instant, inserted (the list grew), or the token is new or rebuilt.
-- Else a window keeps its slot when it has one and its stored sums `ls` are of at0
-- with a count; a window without (added to the token, or whose fields another
-- writer deleted) gets a new slot, its old one and those of windows gone become
-- orphans (their members deleted over the next calls). Slots are never reused
-- (a list's place in a trader's text is its slot): past SLOTS, it all starts over.
function LONG.M.begin(K, wins, r, at0, n0, rebuilt, ls)
  local M = LONG.M
  local old = at0 and n0 and not rebuilt and M.parse(redis.call('HGET', K[16], '~'))
  if old and not (old.at == at0 and old.n == n0 and old.r == r) then old = nil end
  local pm = {ok = old ~= nil, slot = {}, fresh = {}, slot_of = {}, orphans = {},
              more = old and old.more}
  local top = -1
  if old then
    top = old.next - 1
    for _, x in ipairs(old.orphans) do pm.orphans[#pm.orphans + 1] = x end
    local kept = {}
    for i, w in ipairs(wins) do
      local x, l = old.slot_of[w.label], ls[i]
      if x and l and l.at == at0 and l.mk then pm.slot[i] = x; kept[x] = true
      else pm.fresh[i] = true end
    end
    for _, x in pairs(old.slot_of) do
      if not kept[x] then pm.orphans[#pm.orphans + 1] = x end
    end
  end
  for i in ipairs(wins) do
    if not pm.slot[i] then top = top + 1; pm.slot[i] = top; pm.fresh[i] = true end
  end
  if not old or top >= M.SLOTS then
    redis.call('UNLINK', K[15], K[16])
    pm.ok, pm.orphans, pm.more = false, {}, false
    for i in ipairs(wins) do pm.slot[i] = i - 1; pm.fresh[i] = true end
    top = #wins - 1
  end
  for i, w in ipairs(wins) do pm.slot_of[w.label] = pm.slot[i] end
  pm.n = top + 1  -- the places in a trader's text, and the next slot's number
  return pm
end

-- The marker as of the write (after the list's trim: its length n)
function LONG.M.mark(K, pv, at, n, r)
  redis.call('HSET', K[16], '~', LONG.M.marker(at, n, r, pv.pm))
end

-- Up to CLEAN members of the first orphan slot deleted; it leaves the marker once
-- none is left
function LONG.M.clean(K, pm)
  local M, x = LONG.M, pm.orphans[1]
  if not x then return end
  local left = false
  for k = 0, 2 do
    local got = redis.call('ZRANGEBYSCORE', K[15], fmt_int(M.pos(x, k, -M.HALF)),
                           fmt_int(M.pos(x, k, M.HALF - 1)), 'LIMIT', 0, M.CLEAN)
    if #got > 0 then chunked('ZREM', K[15], got) end
    if #got == M.CLEAN then left = true end
  end
  if not left then table.remove(pm.orphans, 1) end
end

-- a trader's lists (the hash's text, or false) per slot, as arrays of buckets,
-- and their texts
function LONG.M.lists(v, n)
  local out, texts, i, p = {}, {}, 1, 1
  if not v then
    for j = 1, n do out[j], texts[j] = {}, '' end
    return out, texts
  end
  while i <= n do
    local e = sfind(v, ';', p, true)
    local part = ssub(v, p, (e or #v + 1) - 1)
    local L = {}
    for b in string.gmatch(part, '[^,]+') do L[#L + 1] = tonumber(b) end
    out[i], texts[i] = L, part
    i = i + 1
    if not e then break end
    p = e + 1
  end
  for j = i, n do out[j], texts[j] = {}, '' end
  return out, texts
end

-- whether list L stays as it is: no point at or before p0, every bucket of `bks`
-- after lo in it already (the usual call: a trader trading again in its bucket)
function LONG.M.same(L, bks, p0, lo)
  if L[1] and L[1] <= p0 then return false end
  for _, b in ipairs(bks) do
    if b > lo then
      local found = false
      for j = #L, 1, -1 do if L[j] == b then found = true; break end end
      if not found then return false end
    end
  end
  return true
end

-- the members of list L of trader tr in slot s into `sc` (name -> score) and
-- `pt` (name -> its point, or the pair's first)
function LONG.M.members(s, tr, L, W, sc, pt)
  local M = LONG.M
  for j, b in ipairs(L) do
    local tb = fmt_int(b)
    local name = s .. 'p' .. tr .. ':' .. tb
    sc[name], pt[name] = M.pos(s, 0, b), b
    local c = L[j + 1]
    if c and c - b < W then
      name = s .. 's' .. tr .. ':' .. tb
      sc[name], pt[name] = M.pos(s, 1, c - W), b
      name = s .. 'e' .. tr .. ':' .. tb
      sc[name], pt[name] = M.pos(s, 2, b), b
    end
  end
end

-- L (ascending, distinct) thinned: every middle point with x_{j+1} - x_{j-1} < W
-- goes (each removal keeps every range's answer; a later one only widens the
-- gaps left of it)
function LONG.M.thin(L, W)
  local j = 2
  while j < #L do
    if L[j + 1] - L[j - 1] < W then table.remove(L, j) else j = j + 1 end
  end
  return L
end

-- b into ascending, distinct L
function LONG.M.put(L, b)
  local j = #L
  while j > 0 and L[j] > b do j = j - 1 end
  if L[j] ~= b then table.insert(L, j + 1, b) end
end

-- One trader's list L of slot s moved: its points at or before p0 out, the
-- buckets `bks` after lo in, thinned; its members' changes into zadd / zrem.
-- Returns the new list's text and whether a member at or before p1 changed (a
-- member after p1 is in no count of this p1: a pair (a, c) with a > p1 has
-- c - W > p0)
function LONG.M.move(s, tr, L, bks, W, p0, p1, lo, zadd, zrem)
  local M, NL, dirty = LONG.M, {}, false
  if not (L[1] and L[1] <= p0) then
    local text, d = M.append(s, tr, L, bks, W, p1, lo, zadd, zrem)
    if text then return text, d end
  end
  for _, b in ipairs(L) do if b > p0 then NL[#NL + 1] = b end end
  for _, b in ipairs(bks) do if b > lo then M.put(NL, b) end end
  M.thin(NL, W)
  local os, op, ns, np = {}, {}, {}, {}
  M.members(s, tr, L, W, os, op)
  M.members(s, tr, NL, W, ns, np)
  for name in pairs(os) do
    if not ns[name] then zrem[#zrem + 1] = name; dirty = dirty or op[name] <= p1 end
  end
  for name, v in pairs(ns) do
    if os[name] ~= v then
      zadd[#zadd + 1] = v; zadd[#zadd + 1] = name
      dirty = dirty or np[name] <= p1 or (os[name] ~= nil and op[name] <= p1)
    end
  end
  for j, b in ipairs(NL) do NL[j] = fmt_int(b) end
  return table.concat(NL, ','), dirty
end

-- LONG.M.move's usual case, without a diff of the whole lists: every new bucket
-- after the list's last point (or in it already), appended in order: the last
-- point goes when the one before it is less than W before the new one (the pair
-- it closed, named by that one, now ends at the new point), else the new point
-- closes a pair with it when less than W after it. nil when another case.
function LONG.M.append(s, tr, L, bks, W, p1, lo, zadd, zrem)
  local M = LONG.M
  if #bks == 1 then return M.append1(s, tr, L, bks[1], W, p1, lo, zadd, zrem) end
  local add, NL, ops, dirty = {}, {}, {}, false
  for _, b in ipairs(bks) do if b > lo then add[#add + 1] = b end end
  table.sort(add)
  for j, b in ipairs(L) do NL[j] = b end
  local pre = s .. 'p' .. tr .. ':'
  for _, b in ipairs(add) do
    local n = #NL
    local last = NL[n]
    if last and b <= last then
      local found = false
      for j = n, 1, -1 do if NL[j] == b then found = true; break end end
      if not found then return nil end
    else
      local before = NL[n - 1]
      if before and b - before < W then  -- last goes; the pair (before, last) now ends at b
        ops[pre .. fmt_int(last)] = false
        ops[s .. 's' .. tr .. ':' .. fmt_int(before)] = M.pos(s, 1, b - W)
        NL[n] = b
        dirty = dirty or before <= p1
      else
        if last and b - last < W then
          local tl = fmt_int(last)
          ops[s .. 's' .. tr .. ':' .. tl] = M.pos(s, 1, b - W)
          ops[s .. 'e' .. tr .. ':' .. tl] = M.pos(s, 2, last)
          dirty = dirty or last <= p1
        end
        NL[n + 1] = b
      end
      ops[pre .. fmt_int(b)] = M.pos(s, 0, b)
      dirty = dirty or b <= p1
    end
  end
  for name, v in pairs(ops) do
    if v then zadd[#zadd + 1] = v; zadd[#zadd + 1] = name else zrem[#zrem + 1] = name end
  end
  for j, b in ipairs(NL) do NL[j] = fmt_int(b) end
  return table.concat(NL, ','), dirty
end

-- LONG.M.append of one bucket b (the usual call), writing its changes directly
-- (the same steps as LONG.M.append's, without gathering them by name: that
-- costs ~5 % of a full-mode apply's Redis time in the batch regime);
-- L (the caller's parsed copy) is changed in place. (Buckets are integers below
-- 10^14: table.concat writes them as fmt_int does.)
function LONG.M.append1(s, tr, L, b, W, p1, lo, zadd, zrem)
  local M, n = LONG.M, #L
  local last = L[n]
  if b <= lo then return table.concat(L, ','), false end
  if last and b <= last then return nil end
  local before, dirty = L[n - 1], b <= p1
  if before and b - before < W then  -- last goes; the pair (before, last) now ends at b
    zrem[#zrem + 1] = s .. 'p' .. tr .. ':' .. last
    zadd[#zadd + 1] = M.pos(s, 1, b - W); zadd[#zadd + 1] = s .. 's' .. tr .. ':' .. before
    L[n] = b
    dirty = dirty or before <= p1
  else
    if last and b - last < W then
      zadd[#zadd + 1] = M.pos(s, 1, b - W); zadd[#zadd + 1] = s .. 's' .. tr .. ':' .. last
      zadd[#zadd + 1] = M.pos(s, 2, last); zadd[#zadd + 1] = s .. 'e' .. tr .. ':' .. last
      dirty = dirty or last <= p1
    end
    L[n + 1] = b
  end
  zadd[#zadd + 1] = M.pos(s, 0, b); zadd[#zadd + 1] = s .. 'p' .. tr .. ':' .. b
  return table.concat(L, ','), dirty
end

-- The count of slot s (buckets p0, p1) from the sorted set
function LONG.M.count(K, s, p0, p1)
  local M = LONG.M
  local pts = redis.call('ZCOUNT', K[15], '(' .. fmt_int(M.pos(s, 0, p0)), fmt_int(M.pos(s, 0, p1)))
  local st = redis.call('ZCOUNT', K[15], fmt_int(M.pos(s, 1, -M.HALF)), fmt_int(M.pos(s, 1, p0)))
  local en = redis.call('ZCOUNT', K[15], fmt_int(M.pos(s, 2, -M.HALF)), fmt_int(M.pos(s, 2, p0)))
  return pts - (st - en)
end

-- An apply's part (after LONG.P.start: pv.wins, pv.p1, pv.cov, pv.xs, pv.bs, pv.ls;
-- pm = LONG.M.begin's): the entered trades' points in, stale points out, the
-- marker as of `at`, and per window pv.mk[i], its prev_makers as of at (the
-- stored count when nothing it counts changed). `ttl`: the keys' TTL (a call
-- with new trades), or a function giving it (asked only for keys this call made).
function LONG.M.step(K, pv, pm, r, at, ttl)
  local M, wins = LONG.M, pv.wins
  local n = #wins
  local W, p0, p1, lo = {}, {}, {}, {}
  for i, w in ipairs(wins) do
    W[i] = w.ms / r
    p1[i] = pv.p1[i] / r
    p0[i] = p1[i] - W[i]
    lo[i] = max(p0[i], pv.cov[i] / r)  -- (-inf / r: -inf)
  end
  -- the traders to touch: those of the entered trades, those of one slot's stale points
  local touch, order = {}, {}
  for j, x in ipairs(pv.xs) do
    local tr = x.tr
    if tr and tr ~= '' then
      local t = touch[tr]
      if not t then t = {}; touch[tr] = t; order[#order + 1] = tr end
      t[#t + 1] = pv.bs[j] / r
    end
  end
  -- a sweep of the longest window's stale points when the buckets moved (its p1:
  -- once a bucket), and after a sweep that found SWEEP (more may wait). A trader
  -- swept leaves its stale points of every window: one who stopped trading goes
  -- at once, twice the longest window after its last trade (the shorter windows'
  -- stale points wait till then, or till it trades again: they are never counted)
  -- (as many as SWEEP and the traders this call brings: a call of many new traders
  -- sweeps as many, so stale ones never pile up faster than they go)
  pm.swept_all = false
  if pm.ok then M.clean(K, pm) end
  if pm.ok and (pm.more or not (pv.ls[n] and pv.ls[n].p1 == pv.p1[n])) then
    local s, limit = pm.slot[n], M.SWEEP + #order
    local stale = redis.call('ZRANGEBYSCORE', K[15], fmt_int(M.pos(s, 0, -M.HALF)),
                             fmt_int(M.pos(s, 0, p0[n])), 'LIMIT', 0, limit)
    for _, m in ipairs(stale) do
      local tr = smatch(m, '^%d+p(.*):%-?%d+$')
      if tr and not touch[tr] then touch[tr] = {}; order[#order + 1] = tr end
    end
    pm.swept_all = #stale == limit
  end
  local dirty, zadd, zrem, hdel, hset = {}, {}, {}, {}, {}
  for from = 1, #order, M.SCAN do
    local part = {}
    for j = from, min(from + M.SCAN - 1, #order) do part[#part + 1] = order[j] end
    local got = pm.ok and redis.call('HMGET', K[16], unpack(part)) or {}
    for k, tr in ipairs(part) do
      local old, bks, any = got[k], touch[tr], false
      local lists, texts = M.lists(old, pm.n)
      local active = {}
      for i = 1, n do
        local x = pm.slot[i] + 1
        active[x] = true
        local L = lists[x]
        if not M.same(L, bks, p0[i], lo[i]) then
          local d
          texts[x], d = M.move(x - 1, tr, L, bks, W[i], p0[i], p1[i], lo[i], zadd, zrem)
          if d then dirty[i] = true end
        end
        if texts[x] ~= '' then any = true end
      end
      for x = 1, pm.n do if not active[x] then texts[x] = '' end end  -- (orphans' places)
      if any then
        local v = table.concat(texts, ';')
        if v ~= old then hset[#hset + 1] = tr; hset[#hset + 1] = v end
      elseif old then hdel[#hdel + 1] = tr end
    end
  end
  if #zrem > 0 then chunked('ZREM', K[15], zrem) end
  if #zadd > 0 then chunked('ZADD', K[15], zadd) end
  if #hdel > 0 then chunked('HDEL', K[16], hdel) end
  if #hset > 0 then chunked('HSET', K[16], hset) end
  -- TTLs: with new trades (`ttl` a number), and for keys this call may have made
  if type(ttl) ~= 'number' and (not pm.ok or #zadd > 0) then ttl = ttl() end
  if type(ttl) == 'number' or not pm.ok then  -- (the marker follows: the hash exists)
    if not pm.ok then redis.call('HSET', K[16], '~', '') end
    redis.call('PEXPIRE', K[16], ttl)
  end
  if #zadd > 0 then redis.call('PEXPIRE', K[15], ttl) end
  pv.mk = {}
  for i = 1, n do
    local l = pv.ls[i]
    -- the stored count stands when nothing it counts changed: no member at or before
    -- p1, and no stored bucket with trades passed by the range's ends (lib/prev.lua)
    if pm.ok and not pm.fresh[i] and l and l.mk and not dirty[i] and not pv.passed[i] then pv.mk[i] = l.mk
    else pv.mk[i] = M.count(K, pm.slot[i], p0[i], p1[i]) end
  end
end

-- A read's prev_makers of window `label` (lib/prev.lua's LONG.P.read): `rd`
-- LONG.M.reading's memo; l its stored sums (nil: not of last_update); (p0, p1] in
-- buckets, lo the first bucket counted (coverage); `xs`, `bs` the entries entered
-- in memory only and their buckets (ms); `passed`: a stored bucket with trades
-- entered or left the range since l.p1 (lib/prev.lua). false: not known (a writer
-- without them moved the token, or the structure has no such window).
function LONG.M.read(K, rd, label, l, p1ms, W, r, lo, xs, bs, passed)
  local M = LONG.M
  local p1 = p1ms / r
  local p0 = p1 - W
  local s = rd.slot[label]
  local use, base = rd.ok and s and l, 0
  -- sums of last_update but not this structure: not known; neither (l nil): both
  -- count from the coverage at last_update, i.e. only what entered in memory
  if l and not use then return false end
  if use then base = (l.mk and not passed) and l.mk or M.count(K, s, p0, p1) end
  -- the traders entered in memory with a bucket inside, not counted yet
  local new, seen = {}, {}
  for j, x in ipairs(xs) do
    local b = bs[j] / r
    if x.tr and x.tr ~= '' and b > lo and b <= p1 and not seen[x.tr] then
      seen[x.tr] = true; new[#new + 1] = x.tr
    end
  end
  if #new == 0 then return base end
  if use and not rd.lists then  -- the stored lists of every pending trader (once a read)
    rd.lists = {}
    local trs, seen2 = {}, {}
    for _, x in ipairs(xs) do
      if x.tr and x.tr ~= '' and not seen2[x.tr] then seen2[x.tr] = true; trs[#trs + 1] = x.tr end
    end
    for from = 1, #trs, M.SCAN do
      local part = {}
      for j = from, min(from + M.SCAN - 1, #trs) do part[#part + 1] = trs[j] end
      local got = redis.call('HMGET', K[16], unpack(part))
      for k, tr in ipairs(part) do rd.lists[tr] = got[k] end
    end
  end
  for _, tr in ipairs(new) do
    local inside = false
    if use then
      local L = M.lists(rd.lists[tr], rd.n)[s + 1]
      for _, b in ipairs(L) do if b > p0 and b <= p1 then inside = true; break end end
    end
    if not inside then base = base + 1 end
  end
  return base
end

-- A read's memo: whether the structure is of last_update `lu` and bucket r, and
-- the slot of each window it keeps (the writers' windows, which may not be the
-- reader's), by label
function LONG.M.reading(K, r, lu, n)
  if not K[15] then return nil end
  local m = LONG.M.parse(redis.call('HGET', K[16], '~'))
  local rd = {ok = m ~= nil and m.at == lu and m.r == r and m.n == (n or redis.call('LLEN', K[1])),
              slot = m and m.slot_of or {}, n = 0}
  for _, x in pairs(rd.slot) do rd.n = max(rd.n, x + 1) end
  return rd
end
