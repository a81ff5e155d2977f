--[[
  What every scheduler script shares: the shard's fixed keys, the id prefixes, the clock, the
  failure codes, and the small steps several transitions take (release a lease, retry or
  dead-letter, make a task runnable, ring the dispatcher's doorbell).

  Every scheduler script takes the same 12 KEYS, all in the shard's hash tag {sched:<shard>}:
    KEYS[1] runnable        zset task id -> ready time
    KEYS[2] delayed         zset task id -> time its retry backoff ends
    KEYS[3] leases          zset '<task id>|<token>' -> lease expiry
    KEYS[4] done            zset task id -> finish time
    KEYS[5] dead            zset task id -> dead-letter time
    KEYS[6] workers         zset worker id -> heartbeat deadline
    KEYS[7] idem            hash idempotency key -> task id
    KEYS[8] tenant_running  hash tenant -> leased copies
    KEYS[9] tenant_served   hash tenant -> completed task-ms
    KEYS[10] stats          hash counter -> value
    KEYS[11] doorbell       list the dispatcher blocks on
    KEYS[12] seq            lease token counter
  and the same first 9 ARGV:
    ARGV[1] now (ms)
    ARGV[2..9] id prefixes: task row, children set, job row, worker row, worker inbox,
               stage durations, tenant usage bucket, dead-letter row
  Ids are appended to a prefix to reach a row (same slot: the prefix carries the hash tag).
]]
--@include "includes/codes.lua"
local ERR_UNKNOWN_PARENT = -101

local K_RUNNABLE, K_DELAYED, K_LEASES, K_DONE, K_DEAD, K_WORKERS = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5], KEYS[6]
local K_IDEM, K_TRUN, K_TSERVED, K_STATS, K_BELL, K_SEQ = KEYS[7], KEYS[8], KEYS[9], KEYS[10],
  KEYS[11], KEYS[12]

local NOW = tonumber(ARGV[1])
local P_TASK, P_CHILDREN, P_JOB, P_WORKER, P_INBOX, P_DUR, P_USAGE, P_DEAD = ARGV[2], ARGV[3],
  ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local FIRST_ARG = 10

local function ring()
  if redis.call('LLEN', K_BELL) == 0 then redis.call('LPUSH', K_BELL, '1') end
end

local function split(s, sep)
  local out = {}
  if s == nil or s == false or s == '' then return out end
  for part in string.gmatch(s, '([^' .. sep .. ']+)') do out[#out + 1] = part end
  return out
end

-- Worker rows touched by one script call, loaded once and written back once (flushWorkers), so
-- a batch of 100 settles on one worker costs one write, not 100.
local workerCache = {}

local function loadWorker(id)
  local w = workerCache[id]
  if w ~= nil then return w end
  local r = redis.call('HMGET', P_WORKER .. id, 'slots', 'used_slots', 'cpu_m', 'used_cpu_m',
    'mem_mb', 'used_mem_mb', 'gpu', 'used_gpu_m', 'gpu_free', 'heartbeat_deadline', 'gpu_model')
  if not r[1] then
    workerCache[id] = false
    return false
  end
  w = { id = id, slots = tonumber(r[1]), usedSlots = tonumber(r[2]), cpu = tonumber(r[3]),
    usedCpu = tonumber(r[4]), mem = tonumber(r[5]), usedMem = tonumber(r[6]), gpu = tonumber(r[7]),
    usedGpu = tonumber(r[8]), gpuFree = split(r[9], ','), deadline = tonumber(r[10]),
    model = r[11] or '', dirty = false }
  for i, f in ipairs(w.gpuFree) do w.gpuFree[i] = tonumber(f) end
  workerCache[id] = w
  return w
end

local function flushWorkers()
  for id, w in pairs(workerCache) do
    if w and w.dirty then
      local k = P_WORKER .. id
      redis.call('HSET', k, 'used_slots', w.usedSlots, 'used_cpu_m', w.usedCpu, 'used_mem_mb',
        w.usedMem, 'used_gpu_m', w.usedGpu, 'gpu_free', table.concat(w.gpuFree, ','))
      redis.call('HINCRBY', k, '_v', 1)
      w.dirty = false
    end
  end
end

-- Takes (sign 1) or gives back (sign -1) a task's demand on a worker; gpus is a csv of devices.
local function account(w, sign, cpu, mem, gpu, gpuMilli, gpus)
  w.usedSlots = w.usedSlots + sign
  w.usedCpu = w.usedCpu + sign * cpu
  w.usedMem = w.usedMem + sign * mem
  if gpu > 0 then
    w.usedGpu = w.usedGpu + sign * gpu * gpuMilli
    for _, d in ipairs(split(gpus, ',')) do
      local i = tonumber(d) + 1
      if w.gpuFree[i] ~= nil then w.gpuFree[i] = w.gpuFree[i] - sign * gpuMilli end
    end
  end
  w.dirty = true
end

-- Tenant counters changed by one call, summed and written once at the end.
local tenantDelta = {}
local function tenantRunning(tenant, by)
  tenantDelta[tenant] = (tenantDelta[tenant] or 0) + by
end
local function flushTenants()
  for t, d in pairs(tenantDelta) do
    if d ~= 0 then redis.call('HINCRBY', K_TRUN, t, d) end
  end
  tenantDelta = {}
end

-- The fields of a task row a lease transition needs.
local function loadTask(id)
  local r = redis.call('HMGET', P_TASK .. id, 'state', 'lease', 'worker', 'gpus', 'spec_lease',
    'spec_worker', 'spec_gpus', 'cpu_m', 'mem_mb', 'gpu', 'gpu_milli', 'tenant', 'attempts',
    'retry_limit', 'backoff_ms', 'leased_at', 'spec_at', 'stage', 'job', 'estimate_ms',
    'done_token', 'submitted_at')
  if not r[1] then return nil end
  return { id = id, key = P_TASK .. id, state = r[1], lease = r[2] or '', worker = r[3] or '',
    gpus = r[4] or '', specLease = r[5] or '', specWorker = r[6] or '', specGpus = r[7] or '',
    cpu = tonumber(r[8]), mem = tonumber(r[9]), gpu = tonumber(r[10]),
    gpuMilli = tonumber(r[11]), tenant = r[12], attempts = tonumber(r[13] or '0'),
    retryLimit = tonumber(r[14] or '0'), backoffMs = tonumber(r[15] or '0'),
    leasedAt = tonumber(r[16] or '0'), specAt = tonumber(r[17] or '0'), stage = r[18],
    job = r[19], estimate = tonumber(r[20] or '0'), doneToken = r[21] or '',
    submittedAt = tonumber(r[22] or '0') }
end

-- Ends one copy (primary or speculative) of a leased task: its lease entry, the capacity it
-- held on its worker, the tenant's running count. Row fields are cleared by the caller.
local function releaseCopy(t, spec)
  local token, workerId, gpus = t.lease, t.worker, t.gpus
  if spec then token, workerId, gpus = t.specLease, t.specWorker, t.specGpus end
  redis.call('ZREM', K_LEASES, t.id .. '|' .. token)
  local w = loadWorker(workerId)
  if w then account(w, -1, t.cpu, t.mem, t.gpu, t.gpuMilli, gpus) end
  tenantRunning(t.tenant, -1)
end

-- Tells a worker to stop a copy it runs (the other copy won, or the lease moved on).
local function cancelCopy(workerId, token, id)
  if workerCache[workerId] ~= false then
    redis.call('RPUSH', P_INBOX .. workerId, '!' .. token .. '\t' .. id)
  end
end

local function makeRunnable(key, id, readyAt)
  redis.call('HSET', key, 'state', 'runnable', 'ready_at', readyAt)
  redis.call('HINCRBY', key, '_v', 1)
  redis.call('ZADD', K_RUNNABLE, readyAt, id)
end

-- A task of `job` ended (done, dead or upstream_failed). Returns the job's completion time
-- (ms since its first submission) when this was its last open task, else -1. A finished job's
-- row expires after JOB_TTL_MS (a script that ends tasks sets it from its ARGV).
local JOB_TTL_MS = 0
local function jobTaskEnded(job, estimate)
  local k = P_JOB .. job
  local left = redis.call('HINCRBY', k, 'remaining', -1)
  if estimate > 0 then redis.call('HINCRBYFLOAT', k, 'remaining_work_ms', -estimate) end
  if left > 0 then return -1 end
  redis.call('HSET', k, 'finished_at', NOW)
  if JOB_TTL_MS > 0 then redis.call('PEXPIRE', k, JOB_TTL_MS) end
  return NOW - tonumber(redis.call('HGET', k, 'submitted_at') or NOW)
end

-- Marks every task downstream of a dead task 'upstream_failed' (they can never run), breadth
-- first and bounded: past the bound the rest stay pending and the count says so.
local CASCADE_MAX = 1000
local function cascadeUpstreamFailed(rootId)
  local queue, head, marked = { rootId }, 1, 0
  while head <= #queue and marked < CASCADE_MAX do
    local id = queue[head]
    head = head + 1
    local ck = P_CHILDREN .. id
    for _, child in ipairs(redis.call('SMEMBERS', ck)) do
      local k = P_TASK .. child
      local r = redis.call('HMGET', k, 'state', 'job', 'estimate_ms')
      if r[1] == 'pending' then
        redis.call('HSET', k, 'state', 'upstream_failed', 'error', 'parent ' .. id .. ' failed',
          'finished_at', NOW)
        redis.call('HINCRBY', k, '_v', 1)
        redis.call('HINCRBY', P_JOB .. r[2], 'dead', 1)
        jobTaskEnded(r[2], tonumber(r[3] or '0'))
        marked = marked + 1
        queue[#queue + 1] = child
      end
    end
    redis.call('DEL', ck)
  end
  return marked
end

local function clearLeaseFields(key)
  redis.call('HDEL', key, 'lease', 'worker', 'gpus', 'spec_lease', 'spec_worker', 'spec_gpus',
    'spec_at')
end

-- A copy failed (the handler threw, or its lease ran out). Returns 'dropped' when the other
-- copy runs on, 'retry' with the delay, or 'dead' once the attempts are spent (or `final`).
local MAX_BACKOFF_MS = 3600000
local function failCopy(t, spec, err, final)
  releaseCopy(t, spec)
  local otherRuns = (spec and t.lease ~= '') or ((not spec) and t.specLease ~= '')
  if otherRuns then
    if spec then
      redis.call('HDEL', t.key, 'spec_lease', 'spec_worker', 'spec_gpus', 'spec_at')
    else
      -- The speculative copy carries on as the task's only copy.
      redis.call('HSET', t.key, 'lease', t.specLease, 'worker', t.specWorker, 'gpus', t.specGpus,
        'leased_at', t.specAt)
      redis.call('HDEL', t.key, 'spec_lease', 'spec_worker', 'spec_gpus', 'spec_at')
    end
    redis.call('HINCRBY', t.key, '_v', 1)
    return 'dropped', 0
  end
  clearLeaseFields(t.key)
  if final or t.attempts > t.retryLimit then
    redis.call('HSET', t.key, 'state', 'dead', 'error', err, 'finished_at', NOW)
    redis.call('HINCRBY', t.key, '_v', 1)
    redis.call('ZADD', K_DEAD, NOW, t.id)
    local r = redis.call('HMGET', t.key, 'type', 'payload')
    redis.call('HSET', P_DEAD .. t.id, '_v', 1, 'id', t.id, 'type', r[1], 'stage', t.stage,
      'tenant', t.tenant, 'job', t.job, 'attempts', t.attempts, 'error', err, 'dead_at', NOW,
      'payload', r[2])
    redis.call('HINCRBY', P_JOB .. t.job, 'dead', 1)
    local jct = jobTaskEnded(t.job, t.estimate)
    cascadeUpstreamFailed(t.id)
    return 'dead', jct
  end
  local delay = t.backoffMs * (2 ^ math.max(0, t.attempts - 1))
  if delay > MAX_BACKOFF_MS then delay = MAX_BACKOFF_MS end
  local readyAt = NOW + delay
  redis.call('HSET', t.key, 'state', 'delayed', 'ready_at', readyAt, 'error', err)
  redis.call('HINCRBY', t.key, '_v', 1)
  redis.call('ZADD', K_DELAYED, readyAt, t.id)
  return 'retry', delay
end
