--[[
  What every scheduler script shares: the shard's fixed keys, the id prefixes, the clock, the
  failure codes, the task row layout, and the small steps several transitions take (release a
  lease, retry or dead-letter, make a task runnable, ring the dispatcher's doorbell).

  Every scheduler script takes the same 12 KEYS, all in the shard's hash tag {sched:<shard>}:
    KEYS[1] runnable        zset task id -> ready time
    KEYS[2] delayed         zset task id -> time its retry backoff ends
    KEYS[3] leases          zset '<task id>|<token>' -> lease expiry
    KEYS[4] done            zset task id -> finish time
    KEYS[5] dead            zset task id -> dead-letter time (and upstream_failed tasks, with
                            the time they ended and no dead-letter row: kept as long)
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

  A task row holds what never changes in one field, `attrs`, 14 tab-separated fields (one
  field costs far less to write, and to append to the AOF, than fourteen):
    type, stage, tenant, job, priority, cpu_m, mem_mb, gpu, gpu_milli, gpu_models (csv),
    estimate_ms ('' = none), critical_ms, submitted_at, depth
  and what changes in fields of its own: state, attempts (of the past copies; a running
  copy's attempt is in its lease), ready_at, pending, lease (the
  current copy: token, worker, leased_at, GPU devices, the worker's incarnation, the attempt,
  tab-separated), spec_lease (a speculative copy, the same way), finished_at, result, error,
  has_children, and _v (the row version: the store's tables read a row only with one). Every
  transition bumps _v but the two every task takes, a claim and a completion: their state and
  lease say what changed, nothing compares task-row versions (the scripts are the only writers
  and check state and lease tokens), and each saved a field read and a field write (~4k
  instructions) per task. Packed fields are split with one string.match (a find/sub loop
  costs three times as much; a field read or written costs more than splitting it).
]]
--@include "includes/codes.lua"
local ERR_UNKNOWN_PARENT = -101

local K_RUNNABLE, K_DELAYED, K_LEASES, K_DONE, K_DEAD, K_WORKERS = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5], KEYS[6]
local K_IDEM, K_TRUN, K_TSERVED, K_STATS, K_BELL, K_SEQ = KEYS[7], KEYS[8], KEYS[9], KEYS[10],
  KEYS[11], KEYS[12]

local NOW = tonumber(ARGV[1])
-- NOW as given, for writes: a Lua number handed to redis.call is formatted with sprintf.
local NOW_S = ARGV[1]
local P_TASK, P_CHILDREN, P_JOB, P_WORKER, P_INBOX, P_DUR, P_USAGE, P_DEAD = ARGV[2], ARGV[3],
  ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local FIRST_ARG = 10

local A_TYPE, A_STAGE, A_TENANT, A_JOB, A_PRIO, A_CPU, A_MEM, A_GPU, A_GPUM, A_MODELS, A_EST,
  A_CRIT, A_SUBMITTED, A_DEPTH = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
local ATTRS = 14

local function ring()
  if redis.call('LLEN', K_BELL) == 0 then redis.call('LPUSH', K_BELL, '1') end
end

--@include "includes/num.lua"

-- Index writes of a call gathered per sorted set and sent as one command each (flushIndexes),
-- so a batch of 100 settles adds to `done` once, not 100 times. Members are unique per call
-- (task ids, lease tokens), so deferring never reorders two writes of the same member.
local zadds, zrems = {}, {}
-- The list of a sorted set's deferred adds (score, member, ...) or removals. A loop over many
-- tasks takes it once and appends directly (zaddList, zremList: a call per task costs more).
local function deferredList(lists, key)
  local l = lists[key]
  if l == nil then
    l = {}
    lists[key] = l
  end
  return l
end
local function zaddList(key) return deferredList(zadds, key) end
local function zremList(key) return deferredList(zrems, key) end
local function zaddLater(key, score, member)
  local l = deferredList(zadds, key)
  l[#l + 1] = score
  l[#l + 1] = member
end
local function zremLater(key, member)
  local l = deferredList(zrems, key)
  l[#l + 1] = member
end
-- unpack passes at most ~8000 values through the C stack: longer lists go in chunks.
local BULK = 4000
local function bulk(cmd, key, args)
  local n = #args
  for i = 1, n, BULK do redis.call(cmd, key, unpack(args, i, math.min(n, i + BULK - 1))) end
end
-- The hot indexes (runnable, leases) are kept in Redis's skiplist encoding. A sorted set is
-- created as a listpack unless its first ZADD carries a member longer than
-- zset-max-listpack-value (64 bytes by default), and stays one up to 128 entries; and an
-- emptied set is deleted, so a queue that drains now and then is a listpack again. A listpack
-- insert scans the set from its head, parsing each score (new leases and new runnable tasks
-- go to the tail): ~200 instructions per entry, ~20k per lease at 100 leases, against ~2k for a
-- skiplist. So the ZADD that creates one of them carries a long placeholder member too, which
-- is removed at once, in the same atomic call: no reader ever sees it, and ZREM never turns a
-- skiplist back into a listpack. The placeholder rides in that first ZADD rather than in one of
-- its own: Redis checks every score before it writes, so a bad score leaves nothing behind (a
-- placeholder left first in the runnable queue would stop every dispatch of the shard). Under
-- settings that keep even the placeholder in a listpack, it only costs two extra commands at
-- creation; and a set loaded from an RDB (a restart, a replica's sync, a resharding) may be a
-- listpack again until it drains or passes 128 entries.
-- (A literal: a string built at run time is built again on every call.)
local SKIPLIST_SEED =
  '~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~'
local keepSkiplist = { [K_RUNNABLE] = true, [K_LEASES] = true }
local function zadd(key, args)
  if not (keepSkiplist[key] and redis.call('EXISTS', key) == 0) then return bulk('ZADD', key, args) end
  local n = #args
  local first = math.min(n, BULK) -- BULK is even: chunks never split a score from its member
  redis.call('ZADD', key, '0', SKIPLIST_SEED, unpack(args, 1, first))
  redis.call('ZREM', key, SKIPLIST_SEED)
  for i = first + 1, n, BULK do redis.call('ZADD', key, unpack(args, i, math.min(n, i + BULK - 1))) end
end
local function flushIndexes()
  -- A list asked for and left empty sends nothing.
  for key, l in pairs(zrems) do bulk('ZREM', key, l) end
  for key, l in pairs(zadds) do
    if #l > 0 then zadd(key, l) end
  end
  zadds, zrems = {}, {}
end

-- Rows and batches travel packed: a row's fields separated by tabs in one value, a batch's items
-- in one ARGV string, each ended by a newline (one string costs far less to send and to
-- receive than many); an item's last field takes the rest of it, so it may hold anything its
-- script allows (a JSON payload; settle gives a detail's length instead).
-- Patterns are literals: a pattern built at run time (string.rep, ..) is built again on every
-- call of the script, and costs more than a Redis command.
local P_LEASE = '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$'

local function malformed(s)
  return redis.error_reply('malformed packed item: ' .. string.sub(s, 1, 80))
end

local function split(s, sep)
  local out = {}
  if s == nil or s == false or s == '' then return out end
  local pattern = '([^,]+)'
  if sep ~= ',' then pattern = '([^' .. sep .. ']+)' end
  for part in string.gmatch(s, pattern) do out[#out + 1] = part end
  return out
end

-- Worker rows touched by one script call, loaded once and written back once (flushWorkers), so
-- a batch of 100 settles on one worker costs one write, not 100.
local workerCache = {}

local function loadWorker(id)
  local w = workerCache[id]
  if w ~= nil then return w end
  local r = redis.call('HMGET', P_WORKER .. id, 'slots', 'used_slots', 'cpu_m', 'used_cpu_m',
    'mem_mb', 'used_mem_mb', 'gpu', 'used_gpu_m', 'gpu_free', 'heartbeat_deadline', 'gpu_model',
    '_v', 'inc', 'heartbeat_at', 'types')
  if not r[1] then
    workerCache[id] = false
    return false
  end
  w = { id = id, slots = NUM[r[1]], usedSlots = NUM[r[2]], cpu = NUM[r[3]],
    usedCpu = NUM[r[4]], mem = NUM[r[5]], usedMem = NUM[r[6]], gpu = NUM[r[7]],
    usedGpu = NUM[r[8]], gpuFree = split(r[9], ','), deadline = NUM[r[10]],
    model = r[11] or '', v = NUM[r[12] or '0'], inc = r[13] or '',
    heartbeatAt = NUM[r[14] or '0'], typesCsv = r[15] or '*', types = nil, dirty = false }
  for i, f in ipairs(w.gpuFree) do w.gpuFree[i] = tonumber(f) end
  workerCache[id] = w
  return w
end

-- Whether the worker runs tasks of type `typ`: '*' (also a row from before types existed) runs
-- every type. The set is built on the first check (the snapshot, settle and reap load rows
-- they never check).
local function runsType(w, typ)
  if w.typesCsv == '*' then return true end
  local set = w.types
  if set == nil then
    set = {}
    for _, t in ipairs(split(w.typesCsv, ',')) do set[t] = true end
    w.types = set
  end
  return set[typ] == true
end

local function flushWorkers()
  -- Every script that changes worker counts releases or takes leases: their index writes go
  -- out here too, so no deferred write is forgotten.
  flushIndexes()
  for id, w in pairs(workerCache) do
    if w and w.dirty then
      w.v = w.v + 1
      local args = { 'used_slots', STR[w.usedSlots], 'used_cpu_m', STR[w.usedCpu],
        'used_mem_mb', STR[w.usedMem], '_v', STR[w.v] }
      if w.gpu > 0 then
        args[#args + 1] = 'used_gpu_m'
        args[#args + 1] = STR[w.usedGpu]
        args[#args + 1] = 'gpu_free'
        args[#args + 1] = table.concat(w.gpuFree, ',')
      end
      redis.call('HSET', P_WORKER .. id, unpack(args))
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

-- Whether a task's GPU demand fits the devices chosen for it on a worker: exactly `gpu`
-- distinct devices, each a device index of the worker (an integer 0..gpu-1, digits only: the
-- lease keeps the string, and account() gives back what it names) with at least `milli`
-- thousandths free (dispatch and speculate). A device named twice would be taken twice from
-- one free count (driving it negative); one that is no index, nothing (or a Lua error).
local function gpuFits(w, gpu, milli, gpus)
  local devices = split(gpus, ',')
  if #devices ~= gpu then return false end
  local seen = gpu > 1 and {} or nil
  for _, d in ipairs(devices) do
    if not string.match(d, '^%d+$') then return false end
    local i = tonumber(d) + 1
    local free = w.gpuFree[i]
    if free == nil or free < milli then return false end
    if seen then
      if seen[i] then return false end
      seen[i] = true
    end
  end
  return true
end

-- Whether a GPU task may run on the worker's model: its attrs' gpu_models (csv; '' = any).
-- Checked at the claim as the snapshot's policy did, since the worker row may have changed
-- since (re-registered on another model); a GPU task only, so CPU claims scan nothing more.
-- A literal: the include runs on every script call, so nothing is built here per call.
local P_ATTRS_MODELS = '^[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)'
local function gpuModelOk(attrs, w)
  local models = string.match(attrs, P_ATTRS_MODELS)
  if not models or models == '' then return true end
  for m in string.gmatch(models, '[^,]+') do
    if m == w.model then return true end
  end
  return false
end

-- Tenant counters changed by one call, summed and written once at the end.
local tenantDelta = {}
local function tenantRunning(tenant, by)
  tenantDelta[tenant] = (tenantDelta[tenant] or 0) + by
end
local function flushTenants()
  for t, d in pairs(tenantDelta) do
    if d ~= 0 then redis.call('HINCRBY', K_TRUN, t, STR[d]) end
  end
  tenantDelta = {}
end

-- What the lease transitions use of a task's attrs (priority, GPU models, critical path and
-- depth are the policy's, read by the dispatcher), decoded in one match.
local P_ATTRS_USED =
  '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t[^\t]*\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t[^\t]*\t([^\t]*)\t[^\t]*\t([^\t]*)'
local function decodeAttrs(attrs)
  local typ, stage, tenant, job, cpu, mem, gpu, gpuMilli, est, submitted =
    string.match(attrs, P_ATTRS_USED)
  return { type = typ, stage = stage, tenant = tenant, job = job, cpu = NUM[cpu],
    mem = NUM[mem], gpu = NUM[gpu], gpuMilli = NUM[gpuMilli],
    estimate = est ~= '' and NUM[est] or 0, submittedAt = NUM[submitted] }
end

local function attrsDepth(attrs)
  return NUM[string.match(attrs, '([^\t]*)$')]
end

-- A lease field: token, worker, leased_at, GPU devices (csv), the incarnation of the worker
-- row it was claimed under, and the attempt. A worker declared dead and registered again gets
-- a new incarnation: copies of the old one are void (no longer counted on the row, never
-- renewed). The attempt rides along so a settle need not read the attempts field.
local function packLease(token, worker, at, gpus, inc, attempt)
  return token .. '\t' .. worker .. '\t' .. at .. '\t' .. gpus .. '\t' .. inc .. '\t' .. attempt
end

-- What a lease transition needs of a task row (nil when there is no such task).
-- One table constructor with every field: a table grown field by field rehashes at each
-- power of two.
-- taskFromRow takes the reply of loadTask's HMGET (state, lease, spec_lease, attrs,
-- has_children, _v): settle reads them itself (without `_v`, v = 0) for its fast path, and
-- hands the reply over.
local function taskFromRow(id, key, r)
  -- No attrs: a tombstone (state 'moved': the task moved to another shard), an unknown task.
  if not r[1] or not r[4] then return nil end
  local typ, stage, tenant, job, cpu, mem, gpu, gpuMilli, est, submitted =
    string.match(r[4], P_ATTRS_USED)
  local token, worker, at, gpus, inc, attempt = '', '', 0, '', '', 0
  if r[2] then
    token, worker, at, gpus, inc, attempt = string.match(r[2], P_LEASE)
    at, attempt = NUM[at], NUM[attempt] or 0
  end
  local sToken, sWorker, sAt, sGpus, sInc = '', '', 0, '', ''
  if r[3] then
    sToken, sWorker, sAt, sGpus, sInc = string.match(r[3], P_LEASE)
    sAt = NUM[sAt]
  end
  -- No estimate is '', which NUM cannot memoize (tonumber gives nil): it is tested first.
  return { id = id, key = key, state = r[1], type = typ, stage = stage, tenant = tenant,
    job = job, cpu = NUM[cpu], mem = NUM[mem], gpu = NUM[gpu], gpuMilli = NUM[gpuMilli],
    estimate = est ~= '' and NUM[est] or 0, submittedAt = NUM[submitted], lease = token,
    worker = worker, leasedAt = at, gpus = gpus, inc = inc, attempts = attempt,
    specLease = sToken, specWorker = sWorker, specAt = sAt, specGpus = sGpus, specInc = sInc,
    hasChildren = r[5] == '1', v = NUM[r[6] or '0'] }
end
local function loadTask(id)
  local key = P_TASK .. id
  return taskFromRow(id, key,
    redis.call('HMGET', key, 'state', 'lease', 'spec_lease', 'attrs', 'has_children', '_v'))
end

-- The inbox entry that hands a worker a copy to run (see inbox.ts): the lease time and retry
-- settings travel with it, so the worker renews and fails the copy under the knob values it
-- was claimed with, and no row has to store them.
local function runEntry(token, id, typ, attempts, leaseMs, retryLimit, backoffMs, payload)
  return token .. '\t' .. id .. '\t' .. typ .. '\t' .. attempts .. '\t' .. leaseMs .. '\t' ..
    retryLimit .. '\t' .. backoffMs .. '\t' .. payload
end

-- Ends one copy (primary or speculative) of a leased task: its lease entry, the capacity it
-- held on its worker, the tenant's running count. Row fields are cleared by the caller.
local function releaseCopy(t, spec)
  local token, workerId, gpus, inc = t.lease, t.worker, t.gpus, t.inc
  if spec then token, workerId, gpus, inc = t.specLease, t.specWorker, t.specGpus, t.specInc end
  zremLater(K_LEASES, t.id .. '|' .. token)
  local w = loadWorker(workerId)
  if w and w.inc == inc then account(w, -1, t.cpu, t.mem, t.gpu, t.gpuMilli, gpus) end
  tenantRunning(t.tenant, -1)
end

-- Tells a worker to stop a copy it runs (the other copy won, the lease moved on, or it was
-- cancelled), on its stop list (keys.ts stops: read even while every slot is busy).
local function cancelCopy(workerId, token, id)
  if workerCache[workerId] ~= false then
    redis.call('RPUSH', P_INBOX .. workerId .. '!', '!' .. token .. '\t' .. id)
  end
end

local function makeRunnable(key, id, readyAt)
  redis.call('HSET', key, 'state', 'runnable', 'ready_at', readyAt)
  redis.call('HINCRBY', key, '_v', 1)
  redis.call('HINCRBY', K_STATS, 'runnable_in', 1) -- as submit counts them
  zadd(K_RUNNABLE, { readyAt, id }) -- a skiplist also when this creates the set
end

-- A task ended (done, dead or upstream_failed). Returns its job's completion time (ms since
-- the job's first submission) when this was the job's last open task, else -1. A task that is
-- its own job (job = id, the default) has no job row: its submission time is its own. A
-- finished job's row expires after JOB_TTL_MS (a script that ends tasks sets it from ARGV).
-- Times are clamped at 0: NOW may be a worker's clock, submitted_at a producer's.
local JOB_TTL_MS = 0
-- A job row's key plus this is the set of its tasks' ids (keys.ts jobTasks; what a job's cancel
-- reads), kept and expired with the row. A task that is its own job has neither.
local JOB_TASKS = '#tasks'
local function jobTaskEnded(id, job, estimate, submittedAt)
  if job == id then return math.max(0, NOW - submittedAt) end
  local k = P_JOB .. job
  local left = redis.call('HINCRBY', k, 'remaining', -1)
  if estimate > 0 then redis.call('HINCRBYFLOAT', k, 'remaining_work_ms', -estimate) end
  if left > 0 then return -1 end
  redis.call('HSET', k, 'finished_at', NOW_S)
  if JOB_TTL_MS > 0 then
    redis.call('PEXPIRE', k, JOB_TTL_MS)
    redis.call('PEXPIRE', k .. JOB_TASKS, JOB_TTL_MS)
  end
  return math.max(0, NOW - tonumber(redis.call('HGET', k, 'submitted_at') or NOW))
end

-- Appends a job that a task's end ended to a reply's list (task id, job, tenant, completion ms).
local function appendJobEnded(list, id, job, tenant, ms)
  list[#list + 1] = id
  list[#list + 1] = job
  list[#list + 1] = tenant
  list[#list + 1] = STR[ms]
end

-- Marks every task downstream of dead tasks 'upstream_failed' (they can never run), breadth
-- first from `roots` and bounded by CASCADE_MAX marks per call: past the bound, the marked
-- tasks whose children were not visited yet go to the shard's cascade list (K_CASCADE), where
-- the reaper carries on (a bound's worth per pass), so no dependent stays pending for ever. A
-- marked task joins the dead index (K_DEAD, by the time it ended, with no dead-letter row), so
-- retention removes it as it removes dead letters. Returns the count and the completion time
-- of job `job` if marking one of its tasks ended it (else -1); with `ended`, every job it
-- ended is appended there too (task id, job, tenant, completion ms).
local CASCADE_MAX = 1000
-- A list under the children prefix with an id no task can have ('*' is not allowed in ids).
local K_CASCADE = P_CHILDREN .. '*'
local function cascadeUpstreamFailed(roots, job, ended)
  local queue, head, marked, jobMs = roots, 1, 0, -1
  while head <= #queue and marked < CASCADE_MAX do
    local id = queue[head]
    head = head + 1
    local ck = P_CHILDREN .. id
    for _, child in ipairs(redis.call('SMEMBERS', ck)) do
      local k = P_TASK .. child
      local r = redis.call('HMGET', k, 'state', 'attrs')
      if r[1] == 'pending' then
        local a = decodeAttrs(r[2])
        redis.call('HSET', k, 'state', 'upstream_failed', 'error', 'parent ' .. id .. ' failed',
          'finished_at', NOW_S)
        redis.call('HINCRBY', k, '_v', 1)
        zaddLater(K_DEAD, NOW_S, child)
        if a.job ~= child then redis.call('HINCRBY', P_JOB .. a.job, 'dead', 1) end
        local ms = jobTaskEnded(child, a.job, a.estimate, a.submittedAt)
        if ms >= 0 and a.job == job then jobMs = ms end
        if ms >= 0 and ended then appendJobEnded(ended, child, a.job, a.tenant, ms) end
        marked = marked + 1
        queue[#queue + 1] = child
      end
    end
    redis.call('DEL', ck)
  end
  if head <= #queue then
    local rest = {}
    for i = head, #queue do rest[#rest + 1] = queue[i] end
    bulk('RPUSH', K_CASCADE, rest)
  end
  return marked, jobMs
end

local function clearLeaseFields(key)
  redis.call('HDEL', key, 'lease', 'spec_lease')
end

-- One copy of a task ends (released by the caller) while its other copy runs on, as the task's
-- only copy. Returns false (and changes nothing) when no other copy runs.
local function dropCopy(t, spec)
  local otherRuns = (spec and t.lease ~= '') or ((not spec) and t.specLease ~= '')
  if not otherRuns then return false end
  if not spec then
    -- The speculative copy carries on as the task's only copy.
    redis.call('HSET', t.key, 'lease', packLease(t.specLease, t.specWorker, t.specAt,
      t.specGpus, t.specInc, t.attempts))
  end
  redis.call('HDEL', t.key, 'spec_lease')
  redis.call('HINCRBY', t.key, '_v', 1)
  return true
end

-- A run entry of a worker's inbox goes back to the queue (the worker never started it): the
-- copy's lease and the capacity it held released, no attempt counted; a speculative copy is
-- dropped, and a primary whose speculative copy runs leaves that one as the task's only copy.
-- Returns false (and changes nothing) for a cancel entry ('!'), the drain marker ('#') or a
-- copy that no longer holds its task (runEntry: token and task id first).
local function giveBackRunEntry(entry)
  local token, id = string.match(entry, '^([^\t!#][^\t]*)\t([^\t]+)\t')
  local t = token and loadTask(id)
  if not (t and t.state == 'leased' and (token == t.lease or token == t.specLease)) then
    return false
  end
  local spec = token == t.specLease
  releaseCopy(t, spec)
  if not dropCopy(t, spec) then
    clearLeaseFields(t.key)
    makeRunnable(t.key, id, NOW_S)
  end
  return true
end

-- A copy failed (the handler threw, or its lease ran out). Returns 'dropped' when the other
-- copy runs on; 'retry' and the backoff (ms); or, once the attempts are spent (or `final`),
-- 'dead' and the job's completion time (or -1) when this death, or the cascade it started,
-- ended the task's job. Other jobs the cascade ended (their last open task depended on this
-- one) are appended to `othersEnded` (appendJobEnded's entries), to be reported as the
-- task's own job is.
local MAX_BACKOFF_MS = 3600000
local function failCopy(t, spec, err, final, retryLimit, backoffMs, othersEnded)
  releaseCopy(t, spec)
  if dropCopy(t, spec) then return 'dropped', 0 end
  clearLeaseFields(t.key)
  if final or t.attempts > retryLimit then
    redis.call('HSET', t.key, 'state', 'dead', 'error', err, 'finished_at', NOW_S, 'attempts',
      t.attempts)
    redis.call('HINCRBY', t.key, '_v', 1)
    redis.call('ZADD', K_DEAD, NOW_S, t.id)
    redis.call('HSET', P_DEAD .. t.id, '_v', 1, 'id', t.id, 'type', t.type, 'stage', t.stage,
      'tenant', t.tenant, 'job', t.job, 'attempts', t.attempts, 'error', err, 'dead_at', NOW_S,
      'payload', redis.call('HGET', t.key, 'payload'))
    if t.job ~= t.id then redis.call('HINCRBY', P_JOB .. t.job, 'dead', 1) end
    local jct = jobTaskEnded(t.id, t.job, t.estimate, t.submittedAt)
    -- The job may end only once the cascade has ended its dependent tasks: report it then.
    if t.hasChildren then
      local ended = {}
      local _, cascadeJct = cascadeUpstreamFailed({ t.id }, t.job, ended)
      if cascadeJct >= 0 then jct = cascadeJct end
      for i = 1, #ended, 4 do
        if ended[i + 1] ~= t.job then
          for k = 0, 3 do othersEnded[#othersEnded + 1] = ended[i + k] end
        end
      end
    end
    return 'dead', jct
  end
  local delay = backoffMs * (2 ^ math.max(0, t.attempts - 1))
  if delay > MAX_BACKOFF_MS then delay = MAX_BACKOFF_MS end
  local readyAt = NOW + delay
  redis.call('HSET', t.key, 'state', 'delayed', 'ready_at', readyAt, 'error', err, 'attempts',
    t.attempts)
  redis.call('HINCRBY', t.key, '_v', 1)
  redis.call('ZADD', K_DELAYED, readyAt, t.id)
  return 'retry', delay
end
