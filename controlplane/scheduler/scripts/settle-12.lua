--[[
  Settles a batch of task copies a worker finished, in one atomic step. Only the current lease
  holder (task id + lease token) settles a task: a completion from a copy whose lease expired
  or lost to the other copy is ignored and counted; the same completion sent twice (a retried
  call) is answered 'again' and changes nothing. A completion releases the capacity the copy
  held, cancels the other copy of a speculated task, records the duration (stage medians,
  tenant service and usage), and makes children whose last parent this was runnable. A failure
  retries with exponential backoff, or dead-letters the task once its attempts are spent.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua)
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     durations kept per stage (for straggler medians)
    ARGV[11]     usage bucket width (ms)
    ARGV[12]     usage bucket time to live (ms)
    ARGV[13]     finished job row time to live (ms)
    ARGV[14]     number of items n
    ARGV[15]     the n items in one string, each ended by a newline, 7 tab-separated fields:
                 task id, lease token, outcome ('ok' | 'fail' | 'final' = fail without retry),
                 retry_limit and retry_backoff_ms (as handed out with the copy; used by
                 failures), the detail's length in bytes, and the detail (the result JSON, or
                 the error message, which may hold anything: its length says where it ends)

  Output:
    one entry per item, 7 tab-separated fields: status, a, attempts, job_ms, job, stage,
    tenant, where status is
      'ok'      completed now; a = duration (ms, now - leased_at: two clocks, so at least 0),
                job_ms = the job's completion time or -1
      'again'   this same copy had completed it already
      'stale'   not the lease holder (expired, re-leased, or the other copy won): ignored
      'unknown' no such task
      'retry'   failed; a = backoff (ms) before it is runnable again
      'dead'    failed for the last time: in the dead-letter table; job_ms as for 'ok' (also
                when the job ended because its remaining tasks became upstream_failed)
      'dropped' failed, but its other (speculative) copy runs on
]]
--@include "includes/shard.lua"

local keep = tonumber(ARGV[FIRST_ARG])
local bucketMs = tonumber(ARGV[FIRST_ARG + 1])
JOB_TTL_MS = tonumber(ARGV[FIRST_ARG + 3])
local n = tonumber(ARGV[FIRST_ARG + 4])
local items = ARGV[FIRST_ARG + 5]

-- One string for all items (the client writes one argument); the last capture is where the
-- detail starts ('^' anchors at the item's start).
local P_ITEM = '^([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t()'
local out = {}
local served, usage, durations = {}, {}, {}
local stale, released = 0, false

local function complete(t, spec, token, result)
  local started = t.leasedAt
  if spec then started = t.specAt end
  -- NOW is the worker's clock, leased_at the dispatcher's: a worker clock behind gives a
  -- negative difference, counted as 0.
  local dur = NOW - started
  if dur < 0 then dur = 0 end
  releaseCopy(t, spec)
  if spec and t.lease ~= '' then
    releaseCopy(t, false)
    cancelCopy(t.worker, t.lease, t.id)
  elseif (not spec) and t.specLease ~= '' then
    releaseCopy(t, true)
    cancelCopy(t.specWorker, t.specLease, t.id)
  end
  -- The winning copy's lease and worker stay on the row: a repeated completion of it answers
  -- 'again', and the row says where it ran.
  if t.specLease ~= '' then
    redis.call('HDEL', t.key, 'spec_lease')
    if spec then
      redis.call('HSET', t.key, 'lease', packLease(token, t.specWorker, t.specAt, t.specGpus,
        t.specInc, t.attempts))
    end
  end
  -- A null result is not stored (absent reads as null).
  if result == 'null' then
    redis.call('HSET', t.key, 'state', 'done', 'finished_at', NOW_S, '_v', STR[t.v + 1])
  else
    redis.call('HSET', t.key, 'state', 'done', 'finished_at', NOW_S, 'result', result, '_v',
      STR[t.v + 1])
  end
  zaddLater(K_DONE, NOW_S, t.id)
  served[t.tenant] = (served[t.tenant] or 0) + dur
  usage[t.tenant] = (usage[t.tenant] or 0) + dur * t.cpu / 1000
  local list = durations[t.stage]
  if list == nil then
    list = {}
    durations[t.stage] = list
  end
  list[#list + 1] = STR[dur]
  local jobMs = jobTaskEnded(t.id, t.job, t.estimate, t.submittedAt)
  if t.hasChildren then
    local ck = P_CHILDREN .. t.id
    for _, child in ipairs(redis.call('SMEMBERS', ck)) do
      local k = P_TASK .. child
      if redis.call('HINCRBY', k, 'pending', -1) <= 0 and redis.call('HGET', k, 'state') == 'pending' then
        makeRunnable(k, child, NOW_S)
      end
    end
    redis.call('DEL', ck)
  end
  return dur, jobMs
end

local at = 1
for i = 1, n do
  local id, token, outcome, retryLimit, backoffMs, len, from = string.match(items, P_ITEM, at)
  len = NUM[len]
  if not len or string.sub(items, from + len, from + len) ~= '\n' then
    return malformed(string.sub(items, at, at + 200))
  end
  local detail = string.sub(items, from, from + len - 1)
  at = from + len + 1
  local t = loadTask(id)
  local status, a, attempts, jobMs = 'unknown', 0, 0, -1
  if t then
    attempts = t.attempts
    if t.state == 'leased' and token ~= '' and (token == t.lease or token == t.specLease) then
      local spec = token == t.specLease
      released = true
      if outcome == 'ok' then
        status = 'ok'
        a, jobMs = complete(t, spec, token, detail)
      else
        local started = t.leasedAt
        if spec then started = t.specAt end
        local x
        status, x = failCopy(t, spec, detail, outcome == 'final', tonumber(retryLimit),
          tonumber(backoffMs))
        if status == 'retry' then
          a = x
        else
          a = NOW - started
          if a < 0 then a = 0 end
          if status == 'dead' then jobMs = x end
        end
      end
    elseif t.state == 'done' and t.lease == token then
      status = 'again'
    else
      status = 'stale'
      if outcome == 'ok' then stale = stale + 1 end
    end
  end
  if t then
    out[i] = status .. '\t' .. STR[a] .. '\t' .. STR[attempts] .. '\t' .. STR[jobMs] .. '\t' ..
      t.job .. '\t' .. t.stage .. '\t' .. t.tenant
  else
    out[i] = status .. '\t0\t0\t-1\t\t\t'
  end
end
flushWorkers()
flushTenants()
for tenant, ms in pairs(served) do redis.call('HINCRBYFLOAT', K_TSERVED, tenant, STR[ms]) end
if next(usage) ~= nil then
  local bucket = P_USAGE .. STR[NOW - NOW % bucketMs]
  for tenant, ms in pairs(usage) do redis.call('HINCRBYFLOAT', bucket, tenant, ms) end
  redis.call('PEXPIRE', bucket, ARGV[FIRST_ARG + 2])
end
for stage, list in pairs(durations) do
  local k = P_DUR .. stage
  redis.call('LPUSH', k, unpack(list))
  redis.call('LTRIM', k, '0', STR[keep - 1])
end
if stale > 0 then redis.call('HINCRBY', K_STATS, 'stale_completions', stale) end
if released then ring() end
return out
