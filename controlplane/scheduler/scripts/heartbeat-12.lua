--[[
  A worker's heartbeat: registers the worker when its row is missing (first beat, or after it
  was declared dead), moves its liveness deadline, and renews the leases of the task copies it
  still runs. Copies it no longer holds (expired and requeued, or lost to the other copy) come
  back as lost, so the worker stops them. A re-registered worker takes back the capacity of the
  copies it still holds, so the accounting heals itself.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); touches workers, leases, doorbell
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     worker id
    ARGV[11]     heartbeat interval (ms); the worker counts as dead 3 intervals after a beat
    ARGV[12..17] capacity: cpu_m, mem_mb, gpu devices, gpu model ('' = none), slots, host
    ARGV[18]     pid
    ARGV[19]     number of held copies n
    ARGV[20..]   n copies of 2 fields: task id, lease token

  Output:
    { registered (1 = the row was created now), lost token, ... }
]]
--@include "includes/shard.lua"

local wid = ARGV[FIRST_ARG]
local hb = tonumber(ARGV[FIRST_ARG + 1])
local gpu = tonumber(ARGV[FIRST_ARG + 4])
local n = tonumber(ARGV[FIRST_ARG + 9])
local base = FIRST_ARG + 10
local k = P_WORKER .. wid
local deadline = NOW + 3 * hb

local created = 0
if redis.call('EXISTS', k) == 0 then
  created = 1
  local gpuFree = {}
  for i = 1, gpu do gpuFree[i] = 1000 end
  redis.call('HSET', k, '_v', 1, 'id', wid, 'cpu_m', ARGV[FIRST_ARG + 2], 'mem_mb',
    ARGV[FIRST_ARG + 3], 'gpu', gpu, 'gpu_model', ARGV[FIRST_ARG + 5], 'slots',
    ARGV[FIRST_ARG + 6], 'host', ARGV[FIRST_ARG + 7], 'pid', ARGV[FIRST_ARG + 8], 'used_slots', 0,
    'used_cpu_m', 0, 'used_mem_mb', 0, 'used_gpu_m', 0, 'gpu_free', table.concat(gpuFree, ','),
    'started_at', NOW)
end
redis.call('HSET', k, 'heartbeat_at', NOW, 'heartbeat_ms', hb, 'heartbeat_deadline', deadline)
redis.call('ZADD', K_WORKERS, deadline, wid)

local out = { created }
local w = false
if created == 1 then w = loadWorker(wid) end
for i = 1, n do
  local o = base + (i - 1) * 2
  local id, token = ARGV[o], ARGV[o + 1]
  local t = loadTask(id)
  local spec = t ~= nil and token == t.specLease
  if t and t.state == 'leased' and (token == t.lease or spec) then
    local leaseMs = tonumber(redis.call('HGET', t.key, 'lease_ms'))
    redis.call('ZADD', K_LEASES, 'XX', NOW + leaseMs, id .. '|' .. token)
    if w then
      local gpus = t.gpus
      if spec then gpus = t.specGpus end
      account(w, 1, t.cpu, t.mem, t.gpu, t.gpuMilli, gpus)
      -- The copy is this worker's again (it may have been re-registered under the same id).
    end
  else
    out[#out + 1] = token
  end
end
flushWorkers()
if created == 1 then ring() end
return out
