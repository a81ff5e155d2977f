--[[
  Live placement migration, step 4 on the OLD shard, after the switch: replaces each copied
  task row with a tombstone (state 'moved', the new shard, expiring with the retention), so a
  late resubmission of the same id is answered "exists" instead of creating a duplicate; its
  idempotency key stays for the same reason, listed to be forgotten when the tombstone expires
  (migrateForget.lua). Index entries, DAG edges (its children set, and its id in its parents'
  children sets here), dead-letter rows and the tenant's job rows (with their sets of tasks) go. A row already a
  tombstone is left alone (safe to repeat).
  Also undoes a refused move on the NEW shard (the tombstones there name the old shard). In
  mode 'undo' (late arrivals after the switch, whose job rows on the new shard are live: they
  count the tasks already moved), no job row is deleted: each tombstoned task's count in its
  job's row here is taken back instead (what its copy added, or the old shard's row brought).
  A row that runs here (runnable, delayed or leased: thawed) is never turned into a tombstone.

  Input:
    KEYS[1] runnable  KEYS[2] delayed  KEYS[3] done  KEYS[4] dead  KEYS[5] frozen (zset)
    KEYS[6] staged (hash)  KEYS[7] idem  KEYS[8] idempotency keys to forget (zset)
    ARGV[1..4] prefixes: task row, children set, job row, dead-letter row
    ARGV[5] the shard the tasks live on now   ARGV[6] tombstone lifetime (ms)   ARGV[7] now (ms)
    ARGV[8] 'clean' or 'undo'
    ARGV[9] number of task ids n   ARGV[10 .. 9+n] task ids, then job ids to delete
  Output: the number of rows turned into tombstones
]]
local P_TASK, P_CHILDREN, P_JOB, P_DEAD = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local expires = tonumber(ARGV[7]) + tonumber(ARGV[6])
local undo = ARGV[8] == 'undo'
local n = tonumber(ARGV[9])
local RUNS = { runnable = true, delayed = true, leased = true }
local ENDED = { done = true, dead = true, upstream_failed = true, cancelled = true }
local FAILED = { dead = true, upstream_failed = true, cancelled = true }
local cleaned = 0
for i = 10, 9 + n do
  local id = ARGV[i]
  local key = P_TASK .. id
  local r = redis.call('HMGET', key, 'state', 'idempotency_key', 'parents', 'attrs')
  if r[1] and r[1] ~= 'moved' and not RUNS[r[1]] then
    if r[2] and redis.call('HGET', KEYS[7], r[2]) == id then
      redis.call('ZADD', KEYS[8], expires, r[2])
    end
    if r[3] then
      for p in string.gmatch(r[3], '[^,]+') do redis.call('SREM', P_CHILDREN .. p, id) end
    end
    if undo and r[4] then
      local job = string.match(r[4], '^[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)')
      local jk = job and P_JOB .. job
      if job and job ~= '' and job ~= id and redis.call('EXISTS', jk) == 1 then
        redis.call('HINCRBY', jk, 'total', -1)
        if FAILED[r[1]] then redis.call('HINCRBY', jk, 'dead', -1) end
        if not ENDED[r[1]] then
          redis.call('HINCRBY', jk, 'remaining', -1)
          local est = tonumber(string.match(r[4], '^' .. string.rep('[^\t]*\t', 10) .. '([^\t]*)'))
          if est and est > 0 then redis.call('HINCRBYFLOAT', jk, 'remaining_work_ms', -est) end
        end
        redis.call('HINCRBY', jk, '_v', 1)
        redis.call('SREM', jk .. '#tasks', id)
      end
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
-- With each job row its set of tasks (includes/shard.lua JOB_TASKS).
for i = 10 + n, #ARGV do redis.call('DEL', P_JOB .. ARGV[i], P_JOB .. ARGV[i] .. '#tasks') end
return cleaned
