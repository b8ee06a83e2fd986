-- lib/volume.lua: exact counts and volumes. A count is an integer; a volume
-- is two integers, whole quote units (hi) and nano units (lo, 0 <= lo < NANO),
-- each far below 2^53, so doubles keep them exact.
--@include lib/core.lua

local NANO = 1000000000  -- nano units per quote unit: the only place this scale is written

local function new_totals() return {b = 0, s = 0, bh = 0, bl = 0, sh = 0, sl = 0} end

-- add (sign 1) or remove (sign -1) one trade's count and quote
local function addq(t, side, qhi, qlo, sign)
  if side == 'b' then
    t.b = t.b + sign
    t.bh = t.bh + sign * qhi; t.bl = t.bl + sign * qlo
    if t.bl >= NANO then t.bl = t.bl - NANO; t.bh = t.bh + 1
    elseif t.bl < 0 then t.bl = t.bl + NANO; t.bh = t.bh - 1 end
  else
    t.s = t.s + sign
    t.sh = t.sh + sign * qhi; t.sl = t.sl + sign * qlo
    if t.sl >= NANO then t.sl = t.sl - NANO; t.sh = t.sh + 1
    elseif t.sl < 0 then t.sl = t.sl + NANO; t.sh = t.sh - 1 end
  end
end

local function add(t, e, sign) addq(t, e.side, e.qhi, e.qlo, sign) end

-- whole and nano units of a quote given in nano units: decimal digits, or
-- base 36 (`base` 36: a compact list entry, lib/entry.lua)
local function split_q(q, base)
  local n
  if base ~= 36 then
    if #q > 15 then return tonumber(ssub(q, 1, -10)), tonumber(ssub(q, -9)) end
    n = tonumber(q)  -- below 2^53: exact in a double
  elseif #q > 10 then  -- 36^10 < 2^53 <= 36^11: digit by digit, exact
    local hi, lo = 0, 0
    for i = 1, #q do
      lo = lo * 36 + tonumber(ssub(q, i, i), 36)
      hi = hi * 36 + floor(lo / NANO); lo = lo % NANO
    end
    return hi, lo
  else
    n = tonumber(q, 36)
  end
  local hi = floor(n / NANO)
  local lo = n - hi * NANO
  if lo < 0 then hi = hi - 1; lo = lo + NANO elseif lo >= NANO then hi = hi + 1; lo = lo - NANO end
  return hi, lo
end

-- Integers as text. '%d' formats an integer about 3x faster than '%.0f'
-- (which goes through the float formatter) and writes the same digits for
-- integers below 2^53 (every count, volume part and instant here); anything
-- else (a corrupt stored value) goes through '%.0f' as before.
local EXACT = 2 ^ 53

local function fmt_int(x)
  if x < EXACT and x > -EXACT and x == floor(x) then return sfmt('%d', x) end
  return sfmt('%.0f', x)
end

local function fmt_vol(hi, lo)
  if hi < EXACT and hi >= 0 and hi == floor(hi) and lo >= 0 and lo < NANO and lo == floor(lo) then
    return sfmt('%d.%09d', hi, lo)
  end
  return sfmt('%.0f.%09.0f', hi, lo)
end

local function parse_vol(s)
  if not s then return nil end
  local hi, lo = smatch(s, '^(%d+)%.(%d%d%d%d%d%d%d%d%d)$')
  if not hi then return nil end
  return tonumber(hi), tonumber(lo)
end

-- buy + sell volume of totals `t`, formatted
local function volume(t)
  local vh, vl = t.bh + t.sh, t.bl + t.sl
  if vl >= NANO then vl = vl - NANO; vh = vh + 1 end
  return fmt_vol(vh, vl)
end

local function same_totals(a, b)
  return a.b == b.b and a.s == b.s and a.bh == b.bh and a.bl == b.bl and a.sh == b.sh
     and a.sl == b.sl
end
