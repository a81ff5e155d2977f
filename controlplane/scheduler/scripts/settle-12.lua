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
                 failures, '' for 'ok'), the detail's length in bytes, and the detail (the
                 result JSON, or the error message, which may hold anything: its length says
                 where it ends)

  Output:
    one entry per item, 7 tab-separated fields: status, a, attempts, job_ms, job, stage,
    tenant (job_ms of a completed task that is its own job may come as '@<submitted_at>': the
    job's time is max(0, now - submitted_at)), then, for a 'dead' whose cascade (its
    dependents upstream_failed) ended other jobs, (job, tenant, completion ms) for each;
    where status is
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
-- The deferred index writes every completion makes (zaddLater, zremLater without the call).
local doneAdds, leaseRems = zaddList(K_DONE), zremList(K_LEASES)

-- What a completed task's row, index and counters get, whichever way it completed: the row
-- says done (a null result is not stored: absent reads as null), the task joins `done`, its
-- tenant's service and usage and its stage's durations grow, its job may end, and children
-- whose last parent this was become runnable. Returns the job's completion time or -1.
local function recordDone(id, key, result, tenant, stage, cpu, dur, job, estimate,
  submittedAt, hasChildren)
  -- A completion leaves `_v` as it is (see includes/shard.lua).
  if result == 'null' then
    redis.call('HSET', key, 'state', 'done', 'finished_at', NOW_S)
  else
    redis.call('HSET', key, 'state', 'done', 'finished_at', NOW_S, 'result', result)
  end
  doneAdds[#doneAdds + 1] = NOW_S
  doneAdds[#doneAdds + 1] = id
  served[tenant] = (served[tenant] or 0) + dur
  usage[tenant] = (usage[tenant] or 0) + dur * cpu / 1000
  local list = durations[stage]
  if list == nil then
    list = {}
    durations[stage] = list
  end
  list[#list + 1] = STR[dur]
  local jobMs
  if job == id then
    -- A task that is its own job (jobTaskEnded without the call).
    jobMs = NOW - submittedAt
    if jobMs < 0 then jobMs = 0 end
  else
    jobMs = jobTaskEnded(id, job, estimate, submittedAt)
  end
  if hasChildren then
    local ck = P_CHILDREN .. id
    for _, child in ipairs(redis.call('SMEMBERS', ck)) do
      local k = P_TASK .. child
      -- Only a child still waiting counts down: a cancelled one may be pruned already, and
      -- HINCRBY would leave a row of one field behind (no attrs, no expiry) that answers
      -- "exists" to its id for ever.
      if redis.call('HGET', k, 'state') == 'pending'
        and redis.call('HINCRBY', k, 'pending', -1) <= 0 then
        makeRunnable(k, child, NOW_S)
      end
    end
    redis.call('DEL', ck)
  end
  return jobMs
end

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
  return dur, recordDone(t.id, t.key, result, t.tenant, t.stage, t.cpu, dur, t.job,
    t.estimate, t.submittedAt, t.hasChildren)
end

-- The usual item, a success of a task's only copy, takes a path of its own with no table per
-- task (a table of the row's 27 fields cost ~10k instructions, as much as a Redis command).
-- What it uses of the attrs: stage, tenant, job, cpu_m, mem_mb, gpu, gpu_milli, estimate_ms,
-- submitted_at; and of the lease after its token: worker, leased_at, GPU devices,
-- incarnation, attempt.
local P_ATTRS_SETTLE =
  '^[^\t]*\t([^\t]*)\t([^\t]*)\t([^\t]*)\t[^\t]*\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t[^\t]*\t([^\t]*)\t[^\t]*\t([^\t]*)'
local P_LEASE_REST = '^\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$'

local at = 1
for i = 1, n do
  local id, token, outcome, retryLimit, backoffMs, len, from = string.match(items, P_ITEM, at)
  len = NUM[len]
  if not len or string.sub(items, from + len, from + len) ~= '\n' then
    return malformed(string.sub(items, at, at + 200))
  end
  local detail = string.sub(items, from, from + len - 1)
  at = from + len + 1
  local key = P_TASK .. id
  -- loadTask's fields but `_v`, which no path of settle uses.
  local r = redis.call('HMGET', key, 'state', 'lease', 'spec_lease', 'attrs', 'has_children')
  local lease, worker, leasedAt, gpus, inc, attempt = r[2], nil, nil, nil, nil, nil
  if outcome == 'ok' and r[1] == 'leased' and not r[3] and lease and token ~= ''
    and string.sub(lease, 1, #token) == token then
    -- The token is the lease's first field when a tab follows it ('^' anchors at the init).
    worker, leasedAt, gpus, inc, attempt = string.match(lease, P_LEASE_REST, #token + 1)
  end
  if worker then
    released = true
    local stage, tenant, job, cpu, mem, gpu, gpuMilli, est, submitted =
      string.match(r[4], P_ATTRS_SETTLE)
    cpu = NUM[cpu]
    local dur = NOW - NUM[leasedAt]
    if dur < 0 then dur = 0 end
    -- releaseCopy without the calls (a call costs ~300 instructions, and most tasks take no
    -- GPU devices).
    leaseRems[#leaseRems + 1] = id .. '|' .. token
    local w = workerCache[worker]
    if w == nil then w = loadWorker(worker) end
    if w and w.inc == inc then
      if gpu == '0' then
        w.usedSlots = w.usedSlots - 1
        w.usedCpu = w.usedCpu - cpu
        w.usedMem = w.usedMem - NUM[mem]
        w.dirty = true
      else
        account(w, -1, cpu, NUM[mem], NUM[gpu], NUM[gpuMilli], gpus)
      end
    end
    tenantDelta[tenant] = (tenantDelta[tenant] or 0) - 1
    -- No estimate is '', which NUM cannot memoize (tonumber gives nil): it is tested first.
    local jobMs = recordDone(id, key, detail, tenant, stage, cpu, dur, job,
      est ~= '' and NUM[est] or 0, NUM[submitted], r[5] == '1')
    -- A task that is its own job reports '@' and its submission time, from which the caller
    -- computes the job's time as this script does (max(0, now - submitted_at)): a number made
    -- a string costs ~2k instructions, and every task's differs.
    if job == id then jobMs = '@' .. submitted else jobMs = STR[jobMs] end
    out[i] = 'ok\t' .. STR[dur] .. '\t' .. STR[NUM[attempt] or 0] .. '\t' .. jobMs .. '\t' ..
      job .. '\t' .. stage .. '\t' .. tenant
  else
    local t = taskFromRow(id, key, r)
    local status, a, attempts, jobMs = 'unknown', 0, 0, -1
    local others = {}
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
            tonumber(backoffMs), others)
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
      -- Other jobs this death's cascade ended: (job, tenant, completion ms) after the fields.
      for k = 1, #others, 4 do
        out[i] = out[i] .. '\t' .. others[k + 1] .. '\t' .. others[k + 2] .. '\t' .. others[k + 3]
      end
    else
      out[i] = status .. '\t0\t0\t-1\t\t\t'
    end
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
