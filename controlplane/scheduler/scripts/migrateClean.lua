--[[
  Live placement migration, step 4 on the OLD shard, after the switch: replaces each copied
  task row with a tombstone (state 'moved', the new shard, expiring with the retention), so a
  late resubmission of the same id is answered "exists" instead of creating a duplicate; its
  idempotency key stays for the same reason. Index entries, DAG edges, dead-letter rows and
  the tenant's job rows go. A row already a tombstone is left alone (safe to repeat).

  Input:
    KEYS[1] runnable  KEYS[2] delayed  KEYS[3] done  KEYS[4] dead  KEYS[5] frozen
    ARGV[1..4] prefixes: task row, children set, job row, dead-letter row
    ARGV[5] the new shard   ARGV[6] tombstone lifetime (ms)   ARGV[7] number of task ids n
    ARGV[8 .. 7+n] task ids, then job ids
  Output: the number of rows turned into tombstones
]]
local P_TASK, P_CHILDREN, P_JOB, P_DEAD = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = tonumber(ARGV[7])
local cleaned = 0
for i = 8, 7 + n do
  local id = ARGV[i]
  local key = P_TASK .. id
  if redis.call('HGET', key, 'state') ~= 'moved' then
    redis.call('DEL', key, P_CHILDREN .. id, P_DEAD .. id)
    redis.call('HSET', key, 'state', 'moved', 'moved_to', ARGV[5])
    redis.call('PEXPIRE', key, ARGV[6])
    for k = 1, 4 do redis.call('ZREM', KEYS[k], id) end
    redis.call('ZREM', KEYS[5], 'r|' .. id, 'd|' .. id)
    cleaned = cleaned + 1
  end
end
for i = 8 + n, #ARGV do redis.call('DEL', P_JOB .. ARGV[i]) end
return cleaned
