-- lib/insert.lua: insert new entries into a token's list in (ts, seq, id)
-- order, touching O(log n) elements per late entry instead of the tail.
--@include lib/state.lua

-- late entries landing at most this far from the end are merged with the tail
-- (read and rewritten: cheaper than LINSERT, which scans from the head in C)
local TAIL_MERGE = 64

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

-- Merge sorted entries xs into the list's elements [from, n): read them,
-- trim them off and push the merge. Appends what it inserted to `inserted`.
local function merge_tail(key, from, n, xs, inserted)
  local tail = {}
  for i, r in ipairs(lrange(key, from, n - 1)) do
    local e = parse(r)
    if not e then corrupt('unparsable list element at ' .. (from + i - 1)) end
    tail[i] = e
  end
  local merged, i, j, added = {}, 1, 1, 0
  while i <= #tail or j <= #xs do
    local c
    if i > #tail then c = 1 elseif j > #xs then c = -1 else c = cmp(tail[i], xs[j]) end
    if c < 0 then merged[#merged + 1] = tail[i].raw; i = i + 1
    elseif c > 0 then
      merged[#merged + 1] = xs[j].raw; inserted[#inserted + 1] = xs[j]; j = j + 1
      added = added + 1
    else merged[#merged + 1] = tail[i].raw; i = i + 1; j = j + 1 end
  end
  if added == 0 then return 0 end
  if from > 0 then redis.call('LTRIM', key, 0, from - 1) else redis.call('DEL', key) end
  push(key, merged)
  return added
end

-- Insert sorted, deduplicated new entries into the list, in order. Entries
-- already in the list are skipped. Returns the inserted entries. Appends are
-- one RPUSH; a late entry costs a binary search and one LINSERT (or, near
-- the end, a merge of at most TAIL_MERGE elements).
local function insert(K, st, news)
  if #news == 0 then return {} end
  local n = st.n
  if n == 0 or cmp(st.tail, news[1]) < 0 then
    push(K[1], raws(news))
    st.n = n + #news
    st.mem, st.mem_from = news, n
    return news
  end
  local inserted, lo = {}, 0
  for j = 1, #news do
    local x = news[j]
    local p, at = lower_bound(K[1], lo, n, x)
    if n - p <= TAIL_MERGE then
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
  return inserted
end
