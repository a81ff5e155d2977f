--[[
  One dispatch round trip: claims the assignments the policy chose last round, then reads the
  snapshot the policy needs for the next one (live workers with free capacity, and a window of
  the oldest runnable tasks with what their views need). A claim checks everything it relies on:
  the task is still runnable, the worker is alive and has the slots, cores, memory and GPU
  devices; it then leases the task (a fresh token, an attempt counted, the lease expiry indexed)
  and pushes it to the worker's inbox, which the worker blocks on.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); touches runnable, leases, workers,
                 tenant_running, tenant_served, seq
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     lease_ms for these claims
    ARGV[11]     retry_limit recorded on the claimed tasks
    ARGV[12]     retry_backoff_ms recorded on the claimed tasks
    ARGV[13]     window: most runnable tasks to return (0 = no snapshot)
    ARGV[14]     most workers to return
    ARGV[15]     number of assignments n
    ARGV[16..]   n assignments of 3 fields: task id, worker id, GPU devices (csv)

  Output:
    { n, status_1, wait_ms_1, ... status_n, wait_ms_n,
      runnable count,
      t, (id, ready_at, view, attempts, depth, tenant, job) x t,
      m, (tenant, running, served_ms) x m,
      j, (job, remaining_work_ms) x j,
      w, (id, cpu_m, mem_mb, gpu, free_cpu_m, free_mem_mb, gpu_free csv, free_slots, gpu_model) x w }
    status: 'ok' | 'gone' (no longer runnable) | 'noworker' (missing or dead) | 'full'
]]
--@include "includes/shard.lua"

local leaseMs = tonumber(ARGV[FIRST_ARG])
local retryLimit = ARGV[FIRST_ARG + 1]
local backoffMs = ARGV[FIRST_ARG + 2]
local window = tonumber(ARGV[FIRST_ARG + 3])
local workersMax = tonumber(ARGV[FIRST_ARG + 4])
local n = tonumber(ARGV[FIRST_ARG + 5])
local base = FIRST_ARG + 6

local function gpuFits(w, gpu, milli, gpus)
  local devices = split(gpus, ',')
  if #devices ~= gpu then return false end
  for _, d in ipairs(devices) do
    local free = w.gpuFree[tonumber(d) + 1]
    if free == nil or free < milli then return false end
  end
  return true
end

local out = { n }
local inbox = {}
local seqTop = 0
if n > 0 then seqTop = redis.call('INCRBY', K_SEQ, n) end
for i = 1, n do
  local o = base + (i - 1) * 3
  local id, wid, gpus = ARGV[o], ARGV[o + 1], ARGV[o + 2]
  local key = P_TASK .. id
  local r = redis.call('HMGET', key, 'state', 'cpu_m', 'mem_mb', 'gpu', 'gpu_milli', 'tenant',
    'attempts', 'ready_at', 'type', 'payload')
  local status, wait = 'ok', 0
  if r[1] ~= 'runnable' then
    status = 'gone'
  else
    local w = loadWorker(wid)
    local cpu, mem, gpu, milli = tonumber(r[2]), tonumber(r[3]), tonumber(r[4]), tonumber(r[5])
    if not w or w.deadline < NOW then
      status = 'noworker'
    elseif w.usedSlots + 1 > w.slots or w.usedCpu + cpu > w.cpu or w.usedMem + mem > w.mem
      or (gpu > 0 and not gpuFits(w, gpu, milli, gpus)) then
      status = 'full'
    else
      local token = tostring(seqTop - n + i)
      local attempts = tonumber(r[7]) + 1
      redis.call('HSET', key, 'state', 'leased', 'lease', token, 'worker', wid, 'gpus', gpus,
        'leased_at', NOW, 'lease_ms', leaseMs, 'retry_limit', retryLimit, 'backoff_ms',
        backoffMs, 'attempts', attempts)
      redis.call('HINCRBY', key, '_v', 1)
      redis.call('ZREM', K_RUNNABLE, id)
      redis.call('ZADD', K_LEASES, NOW + leaseMs, id .. '|' .. token)
      account(w, 1, cpu, mem, gpu, milli, gpus)
      tenantRunning(r[6], 1)
      local list = inbox[wid]
      if list == nil then
        list = {}
        inbox[wid] = list
      end
      list[#list + 1] = token .. '\t' .. id .. '\t' .. r[9] .. '\t' .. attempts .. '\t' ..
        leaseMs .. '\t' .. r[10]
      wait = NOW - tonumber(r[8] or NOW)
    end
  end
  out[#out + 1] = status
  out[#out + 1] = wait
end
flushWorkers()
flushTenants()
for wid, list in pairs(inbox) do redis.call('RPUSH', P_INBOX .. wid, unpack(list)) end

-- The snapshot. Workers first: without free capacity there is nothing to choose.
local queued = redis.call('ZCARD', K_RUNNABLE)
out[#out + 1] = queued
local free = {}
if window > 0 and queued > 0 then
  for _, wid in ipairs(redis.call('ZRANGEBYSCORE', K_WORKERS, NOW, '+inf', 'LIMIT', 0,
    workersMax)) do
    local w = loadWorker(wid)
    if w and w.usedSlots < w.slots then free[#free + 1] = w end
  end
end
if #free == 0 then window = 0 end

local tasks = {}
if window > 0 then tasks = redis.call('ZRANGE', K_RUNNABLE, 0, window - 1, 'WITHSCORES') end
out[#out + 1] = #tasks / 2
local tenants, tenantList, jobs, jobList = {}, {}, {}, {}
for i = 1, #tasks, 2 do
  local id = tasks[i]
  local r = redis.call('HMGET', P_TASK .. id, 'view', 'attempts', 'depth', 'tenant', 'job')
  out[#out + 1] = id
  out[#out + 1] = tasks[i + 1]
  out[#out + 1] = r[1] or '{}'
  out[#out + 1] = r[2] or '0'
  out[#out + 1] = r[3] or '0'
  out[#out + 1] = r[4] or ''
  out[#out + 1] = r[5] or ''
  if r[4] and not tenants[r[4]] then
    tenants[r[4]] = true
    tenantList[#tenantList + 1] = r[4]
  end
  if r[5] and not jobs[r[5]] then
    jobs[r[5]] = true
    jobList[#jobList + 1] = r[5]
  end
end

out[#out + 1] = #tenantList
if #tenantList > 0 then
  local running = redis.call('HMGET', K_TRUN, unpack(tenantList))
  local served = redis.call('HMGET', K_TSERVED, unpack(tenantList))
  for i, t in ipairs(tenantList) do
    out[#out + 1] = t
    out[#out + 1] = running[i] or '0'
    out[#out + 1] = served[i] or '0'
  end
end

out[#out + 1] = #jobList
for _, job in ipairs(jobList) do
  out[#out + 1] = job
  out[#out + 1] = redis.call('HGET', P_JOB .. job, 'remaining_work_ms') or '0'
end

if window == 0 then free = {} end
out[#out + 1] = #free
for _, w in ipairs(free) do
  out[#out + 1] = w.id
  out[#out + 1] = w.cpu
  out[#out + 1] = w.mem
  out[#out + 1] = w.gpu
  out[#out + 1] = w.cpu - w.usedCpu
  out[#out + 1] = w.mem - w.usedMem
  out[#out + 1] = table.concat(w.gpuFree, ',')
  out[#out + 1] = w.slots - w.usedSlots
  out[#out + 1] = w.model
end
return out
