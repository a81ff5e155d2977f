--[[
  The reaper's pass, bounded. A lease that comes due is extended while its worker (the same
  incarnation) is alive, to lease_ms past the worker's liveness deadline (3 beat intervals
  after its last beat): a copy never expires while its worker counts as alive, and expires
  about lease_ms after its worker stopped beating. Otherwise the
  copy is requeued (a failed attempt: retry with backoff or dead-letter, as a failure would)
  and its worker, if still there, is told to stop it. The pass also makes tasks whose backoff
  ended runnable, and removes workers whose heartbeat deadline passed.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua)
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     most entries of each kind handled in this pass
    ARGV[11]     finished job row time to live (ms)
    ARGV[12]     retry_limit for copies whose lease expired
    ARGV[13]     retry_backoff_ms likewise
    ARGV[14]     lease_ms: how far past its worker's liveness deadline a lease is extended

  Output:
    { expired, retried, dead, dropped, promoted, workers removed, renewed,
      (expired id, attempt) ... }
]]
--@include "includes/shard.lua"

local max = tonumber(ARGV[FIRST_ARG])
JOB_TTL_MS = tonumber(ARGV[FIRST_ARG + 1])
local retryLimit = tonumber(ARGV[FIRST_ARG + 2])
local backoffMs = tonumber(ARGV[FIRST_ARG + 3])
local leaseMs = tonumber(ARGV[FIRST_ARG + 4])

local expired, retried, dead, dropped, promoted, removed, renewed = 0, 0, 0, 0, 0, 0, 0
local expiredIds = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', NOW, 'LIMIT', 0, max)) do
  local id, token = string.match(member, '^(.*)|([^|]*)$')
  local t = id and loadTask(id)
  local valid = t and t.state == 'leased' and token ~= '' and
    (token == t.lease or token == t.specLease)
  local spec = valid and token == t.specLease
  local workerId, inc = '', ''
  if valid then
    workerId, inc = t.worker, t.inc
    if spec then workerId, inc = t.specWorker, t.specInc end
  end
  local w = valid and loadWorker(workerId)
  if w and w.inc == inc and w.deadline >= NOW then
    redis.call('ZADD', K_LEASES, w.deadline + leaseMs, member)
    renewed = renewed + 1
  elseif valid then
    local status = failCopy(t, spec, 'lease expired on worker ' .. workerId, false, retryLimit,
      backoffMs)
    cancelCopy(workerId, token, id)
    expired = expired + 1
    expiredIds[#expiredIds + 1] = id
    expiredIds[#expiredIds + 1] = t.attempts
    if status == 'retry' then retried = retried + 1 end
    if status == 'dead' then dead = dead + 1 end
    if status == 'dropped' then dropped = dropped + 1 end
  else
    redis.call('ZREM', K_LEASES, member)
  end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', NOW, 'LIMIT', 0, max)) do
  local k = P_TASK .. id
  redis.call('ZREM', K_DELAYED, id)
  if redis.call('HGET', k, 'state') == 'delayed' then
    makeRunnable(k, id, NOW_S)
    promoted = promoted + 1
  end
end

for _, wid in ipairs(redis.call('ZRANGEBYSCORE', K_WORKERS, '-inf', '(' .. NOW, 'LIMIT', 0, max)) do
  redis.call('DEL', P_WORKER .. wid, P_INBOX .. wid)
  redis.call('ZREM', K_WORKERS, wid)
  workerCache[wid] = false
  removed = removed + 1
end

flushWorkers()
flushTenants()
if expired > 0 or promoted > 0 then ring() end
local out = { expired, retried, dead, dropped, promoted, removed, renewed }
for _, v in ipairs(expiredIds) do out[#out + 1] = v end
return out
