--[[
  Live placement migration, on a shard a tenant moved off: forgets the idempotency keys of the
  moved tasks once their tombstones have expired (the clean step lists them with the time their
  tombstone expires). Until then a late resubmission there answers "exists"; after, a key would
  never be forgotten (retention only forgets keys of the tasks it prunes) and would name a task
  the shard no longer has. A key that now names a live task here (the tenant moved back) is
  left to it.

  Input:
    KEYS[1] the keys to forget (zset idempotency key -> tombstone expiry)   KEYS[2] idem
    ARGV[1] now (ms)   ARGV[2] task row prefix   ARGV[3] most keys handled in this call
  Output: the number of keys forgotten
]]
local forgotten = 0
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])) do
  local id = redis.call('HGET', KEYS[2], key)
  local state = id and redis.call('HGET', ARGV[2] .. id, 'state')
  if state == 'moved' then
    -- The tombstone outlived the listed time (clocks): the next call looks again.
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + 1000, key)
  else
    if id and not state then
      redis.call('HDEL', KEYS[2], key)
      forgotten = forgotten + 1
    end
    redis.call('ZREM', KEYS[1], key)
  end
end
return forgotten
