--[[
  Launches speculative copies of stragglers: a second lease of a running task on another
  worker. Whichever copy completes first wins (settle-12.lua); the other is cancelled.
  Checks that the task still runs under the lease the caller saw, has no copy yet, and that
  the chosen worker is another live worker with room (slots, cores, memory, and the chosen GPU
  devices, as dispatch checks them: gpuFits in includes/shard.lua).

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua)
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     lease_ms of the copies
    ARGV[11]     retry_limit handed to the worker with each copy
    ARGV[12]     retry_backoff_ms likewise
    ARGV[13]     number of items n
    ARGV[14..]   n items of 4 fields: task id, the primary lease token seen, worker id, GPU
                 devices (csv)

  Output:
    { status_1, token_1, ... } status 'ok' | 'gone' (finished, re-leased or already copied) |
    'same' (the worker runs the primary) | 'noworker' | 'unhandled' (it does not run the task's
    type) | 'full'; token '' unless 'ok'
]]
--@include "includes/shard.lua"

local leaseMs = tonumber(ARGV[FIRST_ARG])
local retryLimit = ARGV[FIRST_ARG + 1]
local backoffMs = ARGV[FIRST_ARG + 2]
local n = tonumber(ARGV[FIRST_ARG + 3])
local base = FIRST_ARG + 4

local out = {}
for i = 1, n do
  local o = base + (i - 1) * 4
  local id, seen, wid, gpus = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local t = loadTask(id)
  local status, token = 'ok', ''
  if not t or t.state ~= 'leased' or t.lease ~= seen or t.specLease ~= '' then
    status = 'gone'
  elseif wid == t.worker then
    status = 'same'
  else
    local w = loadWorker(wid)
    if not w or w.deadline < NOW then
      status = 'noworker'
    elseif not runsType(w, t.type) then
      status = 'unhandled'
    elseif w.usedSlots + 1 > w.slots or w.usedCpu + t.cpu > w.cpu or w.usedMem + t.mem > w.mem
      or (t.gpu > 0 and (not gpuFits(w, t.gpu, t.gpuMilli, gpus)
        or not gpuModelOk(redis.call('HGET', t.key, 'attrs'), w))) then
      status = 'full'
    else
      token = tostring(redis.call('INCR', K_SEQ))
      redis.call('HSET', t.key, 'spec_lease', packLease(token, wid, NOW_S, gpus, w.inc,
        t.attempts), '_v', t.v + 1)
      redis.call('ZADD', K_LEASES, NOW + leaseMs, id .. '|' .. token)
      account(w, 1, t.cpu, t.mem, t.gpu, t.gpuMilli, gpus)
      tenantRunning(t.tenant, 1)
      redis.call('RPUSH', P_INBOX .. wid, runEntry(token, id, t.type, t.attempts, leaseMs,
        retryLimit, backoffMs, redis.call('HGET', t.key, 'payload')))
    end
  end
  out[#out + 1] = status
  out[#out + 1] = token
end
flushWorkers()
flushTenants()
return out
