-- janitor_lock.lua: take, renew or release the janitor lock, only as its holder.
-- One key, so it is safe on a Redis Cluster.
--
-- KEYS[1] the lock (tradeagg:{janitor}:lock)
-- ARGV[1] holder token (unique per process)
-- ARGV[2] PX in ms: take the lock if free or renew it if held by ARGV[1];
--         0: release it if held by ARGV[1]
-- Returns 1 if the caller holds (or released) the lock, 0 if another holder has it.

local cur = redis.call('GET', KEYS[1])
local px = tonumber(ARGV[2])
if px == 0 then
  if cur == ARGV[1] then redis.call('DEL', KEYS[1]); return 1 end
  return 0
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', px)
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], px)
  return 1
end
return 0
