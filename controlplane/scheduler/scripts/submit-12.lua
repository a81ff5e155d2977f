--[[
  Submits a batch of tasks in one atomic step. A task whose idempotency key (or id) is already
  known is not created again: its existing id is returned, and later tasks of the batch that
  name it as a parent depend on that existing task. Every parent must exist (or come earlier
  in the batch) before anything is written. A task with open parents is 'pending' and becomes
  runnable when its last parent completes; a task whose parent is dead is 'upstream_failed'.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); writes runnable, idem, doorbell
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     number of tasks n
    ARGV[11..]   n tasks of 17 fields each: id, idempotency key ('' = none), type, stage,
                 tenant, job, priority, cpu_m, mem_mb, gpu, gpu_milli, gpu_models (csv),
                 estimate_ms ('' = none), payload (JSON), parents (csv of ids), critical_ms,
                 view (the static part of the policy's task view, JSON)

  Output:
    { 0, id1, created1, id2, created2, ... } created = 1 for a new task, 0 for an existing one
    { -101, task id, parent id } a parent does not exist; nothing was written
]]
--@include "includes/shard.lua"

local n = tonumber(ARGV[FIRST_ARG])
local S = 17
local base = FIRST_ARG + 1

-- Phase 1: resolve idempotency keys and check parents; nothing is written yet.
local alias = {}     -- submitted id -> the id of the task it is
local fresh = {}     -- id -> batch position, for tasks this batch creates
local batchIdem = {} -- idempotency key -> id, within this batch
for i = 1, n do
  local o = base + (i - 1) * S
  local id, idem = ARGV[o], ARGV[o + 1]
  local existing = false
  if fresh[id] ~= nil then existing = id end
  if not existing and idem ~= '' then
    existing = batchIdem[idem] or redis.call('HGET', K_IDEM, idem)
  end
  if not existing and redis.call('EXISTS', P_TASK .. id) == 1 then existing = id end
  if existing then
    alias[id] = existing
  else
    fresh[id] = i
    if idem ~= '' then batchIdem[idem] = id end
    for _, p in ipairs(split(ARGV[o + 14], ',')) do
      local pid = alias[p] or p
      local earlier = fresh[pid] ~= nil and fresh[pid] < i
      if not earlier and redis.call('EXISTS', P_TASK .. pid) == 0 then
        return { ERR_UNKNOWN_PARENT, id, p }
      end
    end
  end
end

-- Phase 2: write the new tasks.
local function addField(fields, f, v)
  if v ~= '' then
    fields[#fields + 1] = f
    fields[#fields + 1] = v
  end
end
local out = { OK }
local stateOf, depthOf = {}, {}
local jobs = {}
local anyRunnable = false
for i = 1, n do
  local o = base + (i - 1) * S
  local id = ARGV[o]
  if alias[id] ~= nil then
    out[#out + 1] = alias[id]
    out[#out + 1] = 0
  else
    local key = P_TASK .. id
    local open, depth, failedParent = 0, 0, false
    local resolved = {}
    for _, p in ipairs(split(ARGV[o + 14], ',')) do
      local pid = alias[p] or p
      resolved[#resolved + 1] = pid
      local st, d = stateOf[pid], depthOf[pid]
      if st == nil then
        local r = redis.call('HMGET', P_TASK .. pid, 'state', 'depth')
        st, d = r[1], tonumber(r[2] or '0')
      end
      if st == 'dead' or st == 'upstream_failed' then
        failedParent = pid
      elseif st ~= 'done' then
        open = open + 1
        redis.call('SADD', P_CHILDREN .. pid, id)
      end
      if d + 1 > depth then depth = d + 1 end
    end
    local state = 'runnable'
    if failedParent then state = 'upstream_failed' elseif open > 0 then state = 'pending' end
    stateOf[id], depthOf[id] = state, depth
    local job, est = ARGV[o + 5], ARGV[o + 12]
    local fields = { '_v', 1, 'id', id, 'type', ARGV[o + 2], 'stage', ARGV[o + 3], 'tenant',
      ARGV[o + 4], 'job', job, 'priority', ARGV[o + 6], 'cpu_m', ARGV[o + 7], 'mem_mb',
      ARGV[o + 8], 'gpu', ARGV[o + 9], 'gpu_milli', ARGV[o + 10], 'payload', ARGV[o + 13],
      'critical_ms', ARGV[o + 15], 'view', ARGV[o + 16], 'state', state, 'attempts', 0,
      'submitted_at', NOW, 'pending', open, 'depth', depth }
    addField(fields, 'idempotency_key', ARGV[o + 1])
    addField(fields, 'gpu_models', ARGV[o + 11])
    addField(fields, 'estimate_ms', est)
    addField(fields, 'parents', table.concat(resolved, ','))
    if failedParent then
      addField(fields, 'error', 'parent ' .. failedParent .. ' failed')
      addField(fields, 'finished_at', NOW)
    end
    if state == 'runnable' then addField(fields, 'ready_at', NOW) end
    redis.call('HSET', key, unpack(fields))
    if ARGV[o + 1] ~= '' then redis.call('HSET', K_IDEM, ARGV[o + 1], id) end
    if state == 'runnable' then
      redis.call('ZADD', K_RUNNABLE, NOW, id)
      anyRunnable = true
    end
    local j = jobs[job]
    if j == nil then
      j = { n = 0, ended = 0, work = 0, tenant = ARGV[o + 4] }
      jobs[job] = j
    end
    j.n = j.n + 1
    if failedParent then j.ended = j.ended + 1 end
    if est ~= '' and not failedParent then j.work = j.work + tonumber(est) end
    out[#out + 1] = id
    out[#out + 1] = 1
  end
end

for job, j in pairs(jobs) do
  local k = P_JOB .. job
  redis.call('HSETNX', k, 'id', job)
  redis.call('HSETNX', k, 'tenant', j.tenant)
  redis.call('HSETNX', k, 'submitted_at', NOW)
  redis.call('HINCRBY', k, 'total', j.n)
  redis.call('HINCRBY', k, 'remaining', j.n - j.ended)
  if j.ended > 0 then redis.call('HINCRBY', k, 'dead', j.ended) end
  if j.work > 0 then redis.call('HINCRBYFLOAT', k, 'remaining_work_ms', j.work) end
  redis.call('HINCRBY', k, '_v', 1)
  -- A job that had finished and gets more tasks is open again.
  redis.call('HDEL', k, 'finished_at')
  redis.call('PERSIST', k)
end
if anyRunnable then ring() end
return out
