--[[
  Live placement migration, step 4 on the OLD shard, after the switch: replaces each copied
  task row with a tombstone (state 'moved', the new shard, expiring with the retention), so a
  late resubmission of the same id is answered "exists" instead of creating a duplicate; its
  idempotency key stays for the same reason, listed to be forgotten when the tombstone expires
  (migrateForget.lua). Index entries, DAG edges, dead-letter rows and the tenant's job rows go.
  A row already a tombstone is left alone (safe to repeat).
  Also undoes a refused move on the NEW shard (the tombstones there name the old shard).

  Input:
    KEYS[1] runnable  KEYS[2] delayed  KEYS[3] done  KEYS[4] dead  KEYS[5] frozen (zset)
    KEYS[6] staged (hash)  KEYS[7] idem  KEYS[8] idempotency keys to forget (zset)
    ARGV[1..4] prefixes: task row, children set, job row, dead-letter row
    ARGV[5] the shard the tasks live on now   ARGV[6] tombstone lifetime (ms)   ARGV[7] now (ms)
    ARGV[8] number of task ids n   ARGV[9 .. 8+n] task ids, then job ids
  Output: the number of rows turned into tombstones
]]
local P_TASK, P_CHILDREN, P_JOB, P_DEAD = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local expires = tonumber(ARGV[7]) + tonumber(ARGV[6])
local n = tonumber(ARGV[8])
local cleaned = 0
for i = 9, 8 + n do
  local id = ARGV[i]
  local key = P_TASK .. id
  local r = redis.call('HMGET', key, 'state', 'idempotency_key')
  if r[1] ~= 'moved' then
    if r[2] and redis.call('HGET', KEYS[7], r[2]) == id then
      redis.call('ZADD', KEYS[8], expires, r[2])
    end
    redis.call('DEL', key, P_CHILDREN .. id, P_DEAD .. id)
    redis.call('HSET', key, 'state', 'moved', 'moved_to', ARGV[5])
    redis.call('PEXPIRE', key, ARGV[6])
    for k = 1, 4 do redis.call('ZREM', KEYS[k], id) end
    redis.call('ZREM', KEYS[5], 'r|' .. id, 'd|' .. id, 'c|' .. id)
    redis.call('HDEL', KEYS[6], id, 'c|' .. id)
    cleaned = cleaned + 1
  end
end
for i = 9 + n, #ARGV do redis.call('DEL', P_JOB .. ARGV[i]) end
return cleaned
