-- lib/ids.lua: the id index tradeagg:{A}:ids (CONTRACT §1: the same id is one
-- trade, whatever its ts or seq). It holds one 8-byte key per list element:
-- the first 64 bits of SHA-1(id). A Hash whose buckets grow and shrink one at
-- a time (linear hashing), so each holds about LOAD keys at any list length
-- and every call reads and writes a few small fields:
--   "n"          keys held (equals the list length: checked on every call)
--   "N"          buckets, 1 .. MAX_BUCKETS
--   "0".."N-1"   a bucket: its keys concatenated, 8 bytes each, unordered
--   "S"          present when the screener's sets are kept for the token's list
--                (lib/screener.lua; written by the apply, not by ids_save)
-- A key's bucket is chosen by its first 16 bits. About 10 B per key, where a
-- Set of 20-hex digests (earlier releases) cost about 70 B; an index that is
-- not such a hash fails the check, so such a token is rebuilt from its list.
--@include lib/core.lua

local KEY_BYTES = 8
local LOAD = 32            -- keys per bucket before a split; merged below LOAD / 4
local MAX_BUCKETS = 65536  -- 16 address bits: past ~2M keys the buckets grow past LOAD
local WHOLE = 2 * LOAD     -- an index of a list this short (<= 2 buckets) is read whole, in one call
local sfind, concat = string.find, table.concat

-- the 8-byte key of a SHA-1 digest given as hex (at least 16 digits)
local function id_key(hex)
  return struct.pack('>I4I4', tonumber(ssub(hex, 1, 8), 16), tonumber(ssub(hex, 9, 16), 16))
end

local function top_of(N)  -- the largest power of two <= N
  local t = 1
  while t * 2 <= N do t = t * 2 end
  return t
end

-- the bucket of key k among N buckets (top = top_of(N))
local function address(k, N, top)
  local h = sbyte(k, 1) * 256 + sbyte(k, 2)
  local a = h % (2 * top)
  if a >= N then a = h % top end
  return a
end

local function ids_new(key, N)
  N = N or 1
  return {key = key, n = 0, N = N, top = top_of(N), vals = {}, adds = {}, dirty = {},
          dropped = {}, changed = false, stored_N = false}
end

-- The stored index of `key`, for a list of `len` elements: its counts, and
-- for a short list (at most WHOLE: usually 1 or 2 buckets) buckets 0 and 1
-- in the same HMGET; other buckets are read on demand (HMGET). (An HGETALL
-- of a short list's index, turned into a map, cost more than this HMGET; past
-- 2 buckets it costs more than the two HMGETs: its reply is turned into Lua
-- strings element by element, 2-4x at 32 buckets, measured.) A missing
-- bucket is found when it is needed. Raises CORRUPT when it is not an index.
local function ids_open(key, len)
  local whole = len <= WHOLE
  local got = whole and redis.pcall('HMGET', key, 'n', 'N', 'S', '0', '1')
              or redis.pcall('HMGET', key, 'n', 'N', 'S')
  if got.err then corrupt('the id index is not a hash (an older format?)') end
  if not got[1] and not got[2] then return ids_new(key) end
  local screened = got[3] ~= false
  local n, N = tonumber(got[1]), tonumber(got[2])
  if not n or not N or N < 1 or N > MAX_BUCKETS or N ~= floor(N) then
    corrupt('the id index is malformed')
  end
  local ix = ids_new(key, N)
  ix.n, ix.stored_N = n, N
  ix.screened = screened
  if whole then  -- the buckets read with the counts (one missing is found by fetch)
    for b = 0, min(N, 2) - 1 do if got[4 + b] then ix.vals[b] = got[4 + b] end end
  end
  return ix
end

-- read the buckets in `bs` that are not in memory yet (one HMGET per 1000)
local function fetch(ix, bs)
  local want = {}
  for _, b in ipairs(bs) do
    if ix.vals[b] == nil then ix.vals[b] = ''; want[#want + 1] = b end
  end
  if #want == 0 then return end
  local got = chunked('HMGET', ix.key, want, {})
  for i, b in ipairs(want) do
    if not got[i] and ix.n > 0 then corrupt('the id index lost bucket ' .. b) end
    ix.vals[b] = got[i] or ''
  end
end

-- read the buckets of keys `ks`; returns them (valid until the index is saved)
local function ids_fetch(ix, ks)
  local bs = {}
  for j, k in ipairs(ks) do bs[j] = address(k, ix.N, ix.top) end
  fetch(ix, bs)
  return bs
end

-- where key k starts in bucket value v (at a key boundary), or nil
local function find_key(v, k)
  local from = 1
  while true do
    local p = sfind(v, k, from, true)
    if not p or (p - 1) % KEY_BYTES == 0 then return p end
    from = p + 1
  end
end

-- whether the index holds key k (its bucket b, if given, fetched)
local function ids_has(ix, k, b)
  return find_key(ix.vals[b or address(k, ix.N, ix.top)], k) ~= nil
end

-- add key k (its bucket b, if given, fetched); a bucket's added keys are
-- joined to it once, when the index is saved
local function ids_add(ix, k, b)
  b = b or address(k, ix.N, ix.top)
  local a = ix.adds[b]
  if a then a[#a + 1] = k else ix.adds[b] = {k} end
  ix.n = ix.n + 1; ix.changed = true
end

-- remove key k (its bucket fetched; not one added since the last save); false
-- if it was not there
local function ids_remove(ix, k)
  local b = address(k, ix.N, ix.top)
  local v = ix.vals[b]
  local p = find_key(v, k)
  if not p then return false end
  ix.vals[b] = ssub(v, 1, p - 1) .. ssub(v, p + KEY_BYTES)
  ix.dirty[b] = true; ix.n = ix.n - 1; ix.changed = true
  return true
end

-- one more bucket, N: it takes the keys of bucket N - top that now address it
local function split(ix)
  local N = ix.N
  local from = N - ix.top
  fetch(ix, {from})
  ix.N = N + 1
  if ix.N == 2 * ix.top then ix.top = ix.N end
  local v, stay, move = ix.vals[from], {}, {}
  for p = 1, #v, KEY_BYTES do
    local k = ssub(v, p, p + KEY_BYTES - 1)
    if address(k, ix.N, ix.top) == N then move[#move + 1] = k else stay[#stay + 1] = k end
  end
  ix.vals[from], ix.vals[N] = concat(stay), concat(move)
  ix.dirty[from], ix.dirty[N], ix.dropped[N] = true, true, nil
end

-- one bucket fewer: the last one goes back into the bucket it was split from
local function merge(ix)
  local last = ix.N - 1
  ix.N = last
  if last < ix.top then ix.top = ix.top / 2 end
  local into = last - ix.top
  fetch(ix, {into, last})
  ix.vals[into] = ix.vals[into] .. ix.vals[last]
  ix.vals[last], ix.dirty[last], ix.dropped[last], ix.dirty[into] = nil, nil, true, true
end

-- Keep about LOAD keys per bucket (between LOAD / 4 and LOAD on average),
-- then write what changed. An emptied index is deleted.
local function ids_save(ix)
  if not ix.changed then return end
  if ix.n <= 0 then redis.call('DEL', ix.key); ix.stored_N = false; return end
  for b, a in pairs(ix.adds) do ix.vals[b] = ix.vals[b] .. concat(a); ix.dirty[b] = true end
  ix.adds = {}
  while ix.n > ix.N * LOAD and ix.N < MAX_BUCKETS do split(ix) end
  while ix.N > 1 and ix.n * 4 < ix.N * LOAD do merge(ix) end
  local args = {'n', ix.n}
  if ix.N ~= ix.stored_N then args[3] = 'N'; args[4] = ix.N end
  for b in pairs(ix.dirty) do args[#args + 1] = b; args[#args + 1] = ix.vals[b] end
  chunked('HSET', ix.key, args)  -- chunks of an even size: pairs stay together
  if next(ix.dropped) ~= nil then
    local gone = {}
    for b in pairs(ix.dropped) do gone[#gone + 1] = b end
    chunked('HDEL', ix.key, gone)
  end
  ix.dirty, ix.dropped, ix.changed, ix.stored_N = {}, {}, false, ix.N
end

-- A new index of the distinct keys `ks`, written at once (a rebuild).
local function ids_build(key, ks)
  redis.call('DEL', key)
  if #ks == 0 then return ids_new(key) end
  local N = min(MAX_BUCKETS, floor((#ks + LOAD - 1) / LOAD))
  local ix = ids_new(key, N)
  local parts = {}
  for b = 0, N - 1 do parts[b] = {} end
  for _, k in ipairs(ks) do
    local part = parts[address(k, N, ix.top)]
    part[#part + 1] = k
  end
  local args = {'n', #ks, 'N', N}
  for b = 0, N - 1 do
    ix.vals[b] = concat(parts[b])
    args[#args + 1] = b; args[#args + 1] = ix.vals[b]
  end
  chunked('HSET', key, args)
  ix.n, ix.stored_N = #ks, N
  return ix
end
