--[[
  Retention, bounded per pass: removes completed tasks finished before a cutoff or beyond a
  count (oldest first), and dead-lettered tasks likewise, with their rows, idempotency keys and
  dead-letter rows. The dead index also holds upstream_failed tasks (by the time they ended, no
  dead-letter row): they go with the dead letters, but not while a failure's cascade is still
  queued for the reaper (K_CASCADE): its upstream_failed tasks' children sets are what it walks
  next, and removing one left those children pending for ever. A resubmission with a pruned
  task's idempotency key creates a new task.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); touches done, dead, idem
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     done cutoff (ms): completed before it are removed
    ARGV[11]     most completed tasks kept
    ARGV[12]     dead cutoff (ms) (dead letters and upstream_failed tasks)
    ARGV[13]     most of them kept
    ARGV[14]     most tasks removed in this pass

  Output:
    { completed removed, dead (and upstream_failed) removed }
]]
--@include "includes/shard.lua"

local doneCutoff, doneMax = ARGV[FIRST_ARG], tonumber(ARGV[FIRST_ARG + 1])
local deadCutoff, deadMax = ARGV[FIRST_ARG + 2], tonumber(ARGV[FIRST_ARG + 3])
local budget = tonumber(ARGV[FIRST_ARG + 4])

local function removeTask(id)
  local k = P_TASK .. id
  local idem = redis.call('HGET', k, 'idempotency_key')
  if idem and redis.call('HGET', K_IDEM, idem) == id then redis.call('HDEL', K_IDEM, idem) end
  redis.call('DEL', k, P_CHILDREN .. id, P_DEAD .. id)
end

local function prune(index, cutoff, keepMax)
  local ids = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. cutoff, 'LIMIT', 0, budget)
  local over = redis.call('ZCARD', index) - #ids - keepMax
  if over > 0 and #ids < budget then
    local extra = redis.call('ZRANGE', index, #ids, #ids + math.min(over, budget - #ids) - 1)
    for _, id in ipairs(extra) do ids[#ids + 1] = id end
  end
  for _, id in ipairs(ids) do
    removeTask(id)
    redis.call('ZREM', index, id)
  end
  budget = budget - #ids
  return #ids
end

local a = prune(K_DONE, doneCutoff, doneMax)
local b = 0
if redis.call('LLEN', K_CASCADE) == 0 then b = prune(K_DEAD, deadCutoff, deadMax) end
return { a, b }
