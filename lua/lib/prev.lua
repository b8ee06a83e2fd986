-- lib/prev.lua: previous-window metrics, CONTRACT §2b, of every window (exact
-- and bucketed): with resolution r (which divides every window), window w's
-- previous window at `at` holds the trades with P0 < ts <= P1,
-- P1 = ceil((at - w) / r) * r, P0 = P1 - w. P1 <= at, so every bucket
-- B = ceil(ts / r) * r with P0 < B <= P1 is complete and its trades have all
-- entered the windows: the previous window is a sum of the buckets of
-- tradeagg:{A}:buckets (lib/long.lua), which are kept whenever these metrics
-- are (with the screener's keys and K[12]), back to the smallest P0.
-- Per window L, in token:{A}:aggregates (running sums: the buckets P1 passed
-- are added, those P0 passed subtracted, an entering trade whose bucket lies
-- in (P0, P1] added; never a rescan): L:prev_buys, L:prev_sells,
-- L:prev_volume, L:prev_from ("P1 at": P1 and the state's instant at the last
-- write; sums of another instant than last_update are not used), L:volume_change_pct
-- (absent while prev_volume is 0), L:prev_complete_from while partial and, with the
-- keys K[15], K[16] (lib/pmakers.lua), L:prev_makers.
-- Partial: a window's sums count only the buckets after its coverage C
-- (-inf for a token born with these metrics; ceil(at0 / r) * r for a window
-- first counted on an existing token, or for every window of a rebuilt one,
-- whose buckets start over); it says prev_complete_from = C + 2w.
-- All of it is the table LONG.P (the assembled scripts are at Lua's limit of 200
-- main-chunk locals: not even one more local table fits).
--@include lib/pmakers.lua

LONG.P = {}  -- a field of LONG, not a local: the main chunks have no local left
LONG.P.F = {'prev_buys', 'prev_sells', 'prev_volume', 'prev_from', 'prev_complete_from',
            'volume_change_pct', 'prev_makers'}

-- the buckets with lo < B <= hi summed (none read for an empty range)
function LONG.P.range(key, lo, hi)
  if hi <= lo then return new_totals() end
  return LONG.range(key, lo, hi)
end

-- Stored state of windows `wins` ({label, ms}), from the aggregates' map `A`
-- when given (lib/state.lua, hash_map): per window {t, p1, cov} or nil
-- (not counted yet), and the stored texts (F order, per window). The volume is
-- held in the buy part of the totals.
function LONG.P.load(K, wins, A)
  local F, got = LONG.P.F, {}
  if A then  -- (load_state's map) by name, in F order: no list of the names
    for i, w in ipairs(wins) do
      local a = #F * (i - 1)
      got[a + 1], got[a + 2], got[a + 3] = A[w.prev_buys] or false, A[w.prev_sells] or false,
                                           A[w.prev_volume] or false
      got[a + 4], got[a + 5], got[a + 6] = A[w.prev_from] or false, A[w.prev_complete_from] or false,
                                           A[w.volume_change_pct] or false
      got[a + 7] = A[w.prev_makers] or false
    end
  else
    local f = {}
    for _, w in ipairs(wins) do for _, m in ipairs(F) do f[#f + 1] = w[m] end end
    got = redis.call('HMGET', K[3], unpack(f))
  end
  local ls = {}
  for i, w in ipairs(wins) do
    local a, t = #F * (i - 1), new_totals()
    t.b, t.s = tonumber(got[a + 1]), tonumber(got[a + 2])
    t.bh, t.bl = parse_vol(got[a + 3])
    local p1, at = smatch(got[a + 4] or '', '^(%-?%d+) (%-?%d+)$')
    local cf = tonumber(got[a + 5])
    if t.b and t.s and t.bh and p1 then
      ls[i] = {t = t, p1 = tonumber(p1), at = tonumber(at), cov = cf and cf - 2 * w.ms or -math.huge,
               mk = tonumber(got[a + 7])}
    end
  end
  return ls, got
end

-- Totals of window w's previous window (p0, p1] from stored `l` (as of its own
-- l.p1), counting the buckets after cov only, then the entries `xs` not in the
-- buckets yet whose bucket (bs, LONG.P.buckets) lies inside. Also whether a
-- stored bucket with trades entered or left the range (lib/pmakers.lua: else its
-- traders are those of l.p1's range, but for the entries).
function LONG.P.moved(K, l, ms, p0, p1, cov, xs, bs)
  local lo, t, passed = max(p0, cov), nil, true
  if not l or lo >= l.p1 then t = LONG.P.range(K[12], lo, p1)
  elseif lo <= max(l.p1 - ms, cov) and p1 <= l.p1 then
    -- not moved (a read as of the sums' own P1): the stored totals (copied below
    -- before an entry is added to them); they are parsed digits, already
    -- normalised, which LONG.sum with empty ranges would give unchanged
    t, passed = l.t, false
  else
    local out, into = LONG.P.range(K[12], max(l.p1 - ms, cov), lo), LONG.P.range(K[12], l.p1, p1)
    passed = out.b + out.s + into.b + into.s > 0
    t = LONG.sum(l.t, out, -1)
    t = LONG.sum(t, into, 1)
  end
  for j, x in ipairs(xs) do
    local B = bs[j]
    if B > lo and B <= p1 then
      if l and t == l.t then  -- a copy: l.t stays as stored
        t = {b = t.b, s = t.s, bh = t.bh, bl = t.bl, sh = t.sh, sl = t.sl}
      end
      addq(t, x.side, x.qhi, x.qlo, 1)
    end
  end
  return t, passed
end

-- the bucket of each entry of `xs` at resolution r (once for every window)
function LONG.P.buckets(xs, r)
  local bs = {}
  for j, x in ipairs(xs) do bs[j] = LONG.ceil(x.ts, r) end
  return bs
end

-- (volume - prev) / prev * 100 of two totals, or false when prev is 0
function LONG.P.pct(v, p)
  local ph, pl = p.bh + p.sh, p.bl + p.sl  -- (the stored sums hold the volume in bh)
  if pl >= NANO then ph, pl = ph + 1, pl - NANO end
  if ph == 0 and pl == 0 then return false end
  local d = (v.bh + v.sh - ph) + (v.bl + v.sl - pl) / NANO
  return sfmt('%.17g', d / (ph + pl / NANO) * 100)
end

-- The windows' previous totals as of st.at, before this call's entered trades
-- go into the buckets: {wins, sums, starts, covs, keep} where keep is the
-- smallest bucket any of them may still count (the buckets trim up to it).
function LONG.P.start(K, st, wins, r, at0, items, rebuilt)
  local ls, got = LONG.P.load(K, wins, st.agg)
  local xs = LONG.entries(items)
  local bs = LONG.P.buckets(xs, r)
  local pv = {wins = wins, sums = {}, p1 = {}, cov = {}, keep = math.huge, xs = xs, got = got,
              was_keep = math.huge, bs = bs, ls = {}, passed = {}}
  -- prev_makers' structure (lib/pmakers.lua): a window whose part of it starts over
  -- starts its sums over with it (one coverage for all its previous metrics)
  local pm = K[15] and LONG.M.begin(K, wins, r, at0, st.n0, rebuilt, ls)
  pv.pm = pm
  for i, w in ipairs(wins) do
    local l, cov = ls[i], -math.huge
    -- sums written at another instant than the state's: a writer without them (an
    -- earlier release) moved the token meanwhile, its entered trades are in no bucket
    if l and (l.at ~= at0 or (pm and pm.fresh[i])) then l = nil end
    -- the keep of the last write (the buckets' lazy trim): unknown without every window's
    if l and pv.was_keep then pv.was_keep = min(pv.was_keep, max(l.p1 - w.ms, l.cov))
    else pv.was_keep = nil end
    if rebuilt then l, cov = nil, LONG.ceil(st.at, r)
    elseif l then cov = l.cov
    elseif at0 then cov = LONG.ceil(at0, r) end
    local p1 = LONG.ceil(st.at - w.ms, r)
    pv.sums[i], pv.passed[i] = LONG.P.moved(K, l, w.ms, p1 - w.ms, p1, cov, xs, bs)
    pv.p1[i], pv.cov[i], pv.ls[i] = p1, cov, l
    pv.keep = min(pv.keep, max(p1 - w.ms, cov))
  end
  return pv
end

-- The entered entries `xs` into their buckets (those no window counts skipped)
-- and the buckets at or before `keep` out, lazily (as LONG.step: when keep passes
-- a multiple of 16 buckets; `was_keep`: the last write's, nil: unknown): used when
-- no long window does it (LONG.step).
function LONG.P.store(K, xs, keep, r, ttl, was_keep)
  if #xs > 0 then LONG.store(K, xs, r, keep, nil) end  -- (no read of the last bucket for nothing)
  if not was_keep or floor(keep / (16 * r)) ~= floor(was_keep / (16 * r)) then LONG.trim(K, keep) end
  redis.call('PEXPIRE', K[12], ttl)
end

-- Every window's previous metrics that changed (the stored texts pv.got), into
-- the apply's writes of the aggregates (st.hset, st.hdel: one HSET per call);
-- `vols` = each window's totals as of st.at (its volume for volume_change_pct).
function LONG.P.write(K, st, pv, vols)
  local set, del, F, got = st.hset, st.hdel, LONG.P.F, pv.got  -- written with the apply's own
  local at = ' ' .. fmt_int(st.at)  -- (every window's prev_from ends with it)
  for i, w in ipairs(pv.wins) do
    local t, cf = pv.sums[i], pv.cov[i] + 2 * w.ms
    local v = {fmt_int(t.b), fmt_int(t.s), volume(t), fmt_int(pv.p1[i]) .. at,
               cf > st.at and fmt_int(cf) or false, vols[i] and LONG.P.pct(vols[i], t) or false,
               pv.mk and fmt_int(pv.mk[i]) or false}
    local a = #F * (i - 1)
    for k = 1, #F do
      local old = got[a + k]
      if v[k] and v[k] ~= old then set[#set + 1] = w[F[k]]; set[#set + 1] = v[k]
      elseif not v[k] and old then del[#del + 1] = w[F[k]] end
    end
  end
end

-- The previous windows as of `at`, read-only (read_window.lua): the stored
-- sums moved from their P1 to at's, plus the entered entries `items` not
-- written yet (ts in (lu, at]). A window not counted yet counts the buckets
-- after ceil(lu / r) * r only (partial). Returns per window: label,
-- prev_buys, prev_sells, prev_volume, prev_makers|false (false: not kept, or not
-- known: lib/pmakers.lua), prev_complete_from|false.
function LONG.P.read(K, wins, r, lu, at, items, A, n)
  local ls, xs, out, tx = LONG.P.load(K, wins, A), LONG.entries(items), {}, {}
  local bs = LONG.P.buckets(xs, r)
  local rd = LONG.M.reading(K, r, lu, n)  -- (nil: no prev_makers' keys)
  for i, w in ipairs(wins) do
    local l = ls[i]
    if l and l.at ~= lu then l = nil end  -- moved by a writer without them (above)
    local cov = l and l.cov or LONG.ceil(lu, r)
    local p1 = LONG.ceil(at - w.ms, r)
    local t, passed = LONG.P.moved(K, l, w.ms, p1 - w.ms, p1, cov, xs, bs)
    local cf = cov + 2 * w.ms
    -- equal sums (often: empty ones) formatted once (tx: the texts of sums tx.t)
    if not (tx.t and same_totals(t, tx.t)) then tx = {t = t, fmt_int(t.b), fmt_int(t.s), volume(t)} end
    local mk = rd and LONG.M.read(K, rd, w.label, l, p1, w.ms / r, r, max(p1 - w.ms, cov) / r, xs, bs,
                                  passed)
    out[#out + 1] = w.label; out[#out + 1] = tx[1]; out[#out + 1] = tx[2]
    out[#out + 1] = tx[3]; out[#out + 1] = mk and fmt_int(mk) or false
    out[#out + 1] = cf > at and fmt_int(cf) or false
  end
  return out
end

-- the windows whose previous metrics a call keeps: the exact `ws`, then `long`
function LONG.P.wins(ws, long)
  local out = {}
  for _, w in ipairs(ws) do out[#out + 1] = w end
  for _, w in ipairs(long or {}) do out[#out + 1] = w end
  return out
end

-- A read's answer `out` (its exact windows) followed by the long windows' (with
-- them) and the previous windows' (with the screener's sets `sk`, the buckets' key
-- and a bucket): as of `at` from last_update `lu`, with the entered entries `items`
-- not written yet and `ex` (pending(): their traders' stored scores). `A`: the
-- aggregates as a map (lib/state.lua, hash_map; nil: read here), as loaded.
-- `n`: the list's length as loaded (nil: asked here; lib/pmakers.lua's marker names it).
function LONG.P.answer(out, K, conf, lu, at, items, ex, sk, A, n)
  LONG.begin()
  if conf.long then
    for _, v in ipairs(LONG.read(K, conf.long, conf.r, lu, at, items, ex, sk, A)) do out[#out + 1] = v end
  end
  if sk and K[12] and conf.r and not conf.noprev then
    for _, v in ipairs(LONG.P.read(K, LONG.P.wins(conf, conf.long), conf.r, lu, at, items, A, n)) do
      out[#out + 1] = v
    end
  end
  return out
end
