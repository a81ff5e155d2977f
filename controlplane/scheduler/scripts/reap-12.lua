--[[
  The reaper's pass, bounded: requeues copies whose lease came due without a renewal (a failed
  attempt: retry with backoff or dead-letter, as a failure would) and tells their worker, if
  still there, to stop them; makes tasks whose backoff ended runnable; carries on a dead task's
  cascade that reached its bound (includes/shard.lua, cascadeUpstreamFailed); and removes
  workers whose heartbeat deadline passed.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua)
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     most entries of each kind handled in this pass
    ARGV[11]     finished job row time to live (ms)
    ARGV[12]     retry_limit for copies whose lease expired
    ARGV[13]     retry_backoff_ms likewise

  Output:
    { expired, retried, dead, dropped, promoted, workers removed,
      j, (task id, job, tenant, job completion ms) x j (jobs a dead-lettered task, or the
         cascade carried on here, ended),
      (expired id, attempt) ... }
]]
--@include "includes/shard.lua"

JOB_TTL_MS = tonumber(ARGV[FIRST_ARG + 1])
local retryLimit = tonumber(ARGV[FIRST_ARG + 2])
local backoffMs = tonumber(ARGV[FIRST_ARG + 3])

local expired, retried, dead, dropped, promoted, removed = 0, 0, 0, 0, 0, 0
local expiredIds, jobsEnded = {}, {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', NOW_S, 'LIMIT', '0', ARGV[FIRST_ARG])) do
  local id, token = string.match(member, '^(.*)|([^|]*)$')
  local t = id and loadTask(id)
  if t and t.state == 'leased' and token ~= '' and (token == t.lease or token == t.specLease) then
    local spec = token == t.specLease
    local workerId = t.worker
    if spec then workerId = t.specWorker end
    local status, x = failCopy(t, spec, 'lease expired on worker ' .. workerId, false,
      retryLimit, backoffMs, jobsEnded)
    cancelCopy(workerId, token, id)
    expired = expired + 1
    expiredIds[#expiredIds + 1] = id
    expiredIds[#expiredIds + 1] = t.attempts
    if status == 'retry' then retried = retried + 1 end
    if status == 'dead' then
      dead = dead + 1
      if x >= 0 then appendJobEnded(jobsEnded, id, t.job, t.tenant, x) end
    end
    if status == 'dropped' then dropped = dropped + 1 end
  else
    redis.call('ZREM', K_LEASES, member)
  end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', NOW_S, 'LIMIT', '0', ARGV[FIRST_ARG])) do
  local k = P_TASK .. id
  redis.call('ZREM', K_DELAYED, id)
  if redis.call('HGET', k, 'state') == 'delayed' then
    makeRunnable(k, id, NOW_S)
    promoted = promoted + 1
  end
end

-- A failure's cascade that reached its bound goes on here, a bound's worth per pass.
local frontier = redis.call('LPOP', K_CASCADE, ARGV[FIRST_ARG])
if frontier then cascadeUpstreamFailed(frontier, '', jobsEnded) end

for _, wid in ipairs(redis.call('ZRANGEBYSCORE', K_WORKERS, '-inf', '(' .. NOW_S, 'LIMIT', '0', ARGV[FIRST_ARG])) do
  redis.call('DEL', P_WORKER .. wid, P_INBOX .. wid, P_INBOX .. wid .. '!')
  redis.call('ZREM', K_WORKERS, wid)
  workerCache[wid] = false
  removed = removed + 1
end

flushWorkers()
flushTenants()
if expired > 0 or promoted > 0 then ring() end
local out = { expired, retried, dead, dropped, promoted, removed, #jobsEnded / 4 }
for _, v in ipairs(jobsEnded) do out[#out + 1] = v end
for _, v in ipairs(expiredIds) do out[#out + 1] = v end
return out
