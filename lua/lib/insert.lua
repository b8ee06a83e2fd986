-- lib/insert.lua: insert new entries into a token's list in (ts, seq, id)
-- order. A late entry costs O(log n) LINDEX to place it, then one LINSERT
-- (which scans p elements in C) or a splice of at most p / MOVE_COST tail
-- elements through Lua: never the old read-parse-rewrite of the whole tail.
--@include lib/state.lua

-- Where a late entry lands decides how it goes in. LINSERT finds its pivot by
-- scanning from the head in C (about 1/32 of the cost per element of moving an
-- element through Lua, measured on Redis 7.0): entries landing within
-- TAIL_MERGE of the end, or where moving the tail costs less than that scan,
-- are spliced into the tail instead (LRANGE, LTRIM, RPUSH).
local TAIL_MERGE = 64
local MOVE_COST = 32

-- k: the late entries still to place, each of which LINSERT would scan >= p for
local function move_tail(n, p, k) return n - p <= TAIL_MERGE or (n - p) * MOVE_COST < p * k end

-- The first index in [lo, hi) whose element is not before x, and that
-- element if the search read it (nil: hi). O(log(hi - lo)) LINDEX.
local function lower_bound(key, lo, hi, x)
  local found
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    local e = entry_at(key, mid)
    if cmp(e, x) < 0 then lo = mid + 1 else hi = mid; found = e end
  end
  return lo, found
end

-- Splice sorted entries xs into the list's elements [from, n): read them
-- (raw: only O(log) of them are parsed, to place each x), trim them off and
-- push the result. Appends what it inserted to `inserted`; returns how many.
local function merge_tail(key, from, n, xs, inserted)
  local tail = lrange(key, from, n - 1)
  local function at(k)
    local e = parse(tail[k])
    if not e then corrupt('unparsable list element at ' .. (from + k - 1)) end
    return e
  end
  local merged, i, added = {}, 1, 0
  for _, x in ipairs(xs) do
    local lo, hi, found = i, #tail + 1, nil
    while lo < hi do
      local mid = floor((lo + hi) / 2)
      local e = at(mid)
      if cmp(e, x) < 0 then lo = mid + 1 else hi = mid; found = e end
    end
    for k = i, lo - 1 do merged[#merged + 1] = tail[k] end
    i = lo
    if not (found and cmp(found, x) == 0) then
      merged[#merged + 1] = x.raw; inserted[#inserted + 1] = x; added = added + 1
    end
  end
  if added == 0 then return 0 end
  for k = i, #tail do merged[#merged + 1] = tail[k] end
  if from > 0 then redis.call('LTRIM', key, 0, from - 1) else redis.call('DEL', key) end
  push(key, merged)
  return added
end

-- Insert sorted, deduplicated new entries into the list, in order. Entries
-- already in the list are skipped; st.tail stays the list's last entry.
-- Returns the inserted entries. Appends are
-- one RPUSH; a late entry costs a binary search (O(log n) LINDEX) and one
-- LINSERT, or, near the end (move_tail), one splice of the tail after it: k
-- late entries in one call are spliced at once when moving the tail costs less
-- than k LINSERT scans.
local function insert(K, st, news)
  if #news == 0 then return {} end
  local n = st.n
  st.grew = true
  if n == 0 or cmp(st.tail, news[1]) < 0 then
    push(K[1], raws(news))
    st.n = n + #news
    st.mem, st.mem_from, st.tail = news, n, news[#news]
    return news
  end
  local inserted, lo, late = {}, 0, 0
  while late < #news and cmp(st.tail, news[late + 1]) > 0 do late = late + 1 end
  for j = 1, #news do
    local x = news[j]
    local p, at = lower_bound(K[1], lo, n, x)
    if move_tail(n, p, max(late - j + 1, 1)) then
      local rest = {}
      for k = j, #news do rest[#rest + 1] = news[k] end
      n = n + merge_tail(K[1], p, n, rest, inserted)
      break
    end
    if cmp(at, x) ~= 0 then
      insert_before(K[1], at.raw, p, x.raw)
      inserted[#inserted + 1] = x
      n = n + 1
    end
    lo = p + 1
  end
  st.n = n
  local last = inserted[#inserted]
  if last and cmp(st.tail, last) < 0 then st.tail = last end
  return inserted
end
