--[[
  Submits a batch of tasks in one atomic step. A task whose idempotency key (or id) is already
  known is not created again: its existing id is returned, and later tasks of the batch that
  name it as a parent depend on that existing task. Every parent must exist (or come earlier
  in the batch) before anything is written. A task with open parents is 'pending' and becomes
  runnable when its last parent completes; a task whose parent is dead is 'upstream_failed'.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); writes runnable, dead, idem, doorbell
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     number of tasks n
    ARGV[11]     the n tasks in one string, each ended by a newline, tab-separated: id,
                 idempotency key ('' = none), parents (csv of ids), job, tenant, estimate_ms
                 ('' = none; job, tenant and estimate are '' for a task that is its own job:
                 only a job row uses them), the length in bytes of the attrs block and of the
                 payload, then the two back to back: the first 12 attrs fields (type, stage,
                 tenant, job, priority, cpu_m, mem_mb, gpu, gpu_milli, gpu_models,
                 estimate_ms, critical_ms, tab-separated) and the payload (JSON)
    ARGV[12]     finished job row time to live (ms): a job whose every task ended at submit
                 (upstream_failed) finishes here
    ARGV[13]     the shard's moving-tenants set (keys.ts movingTenants): tenants a placement
                 migration is moving off this shard

  Output:
    { 0, k, (batch position, existing id) x k for each task not created because it exists
      already (every other task was created under the id it was sent with),
      (job, tenant, completion ms) for each job of several tasks this batch finished }
    { -101, task id, parent id } a parent does not exist; nothing was written
    { -102, task id, parent id } a parent moved to another shard (its row here is a tombstone,
                                 state 'moved', left by a live placement migration); nothing
                                 was written
    { -103, task id, job }       the job of several tasks a task names is the id of a task
                                 here (job == id means "a job of that task alone"); nothing
                                 was written
    { -104, task id, parent id, parent's tenant }
                                 the parent is an open task of another tenant that is moving
                                 off this shard: the edge would stay here while the parent
                                 moves (the move's copy of the parent never learns of it);
                                 nothing was written
    { -105, task id, existing id, field, idempotency key ('' when the id matched) }
                                 the idempotency key (or the id) names a task submitted with
                                 other content: `field` is the first that differs (an attrs
                                 field the client chose, or payload; not parents); a retry
                                 sends the same task; nothing was written

  Every check is made, and everything phase 2 reads is read, before the first write: a call
  that fails part way (a Lua error) keeps what it wrote before, so phase 2 must not raise
  (a row written but not indexed is never run, and a resubmission answers "exists").
]]
--@include "includes/shard.lua"
local ERR_PARENT_MOVED = -102
local ERR_JOB_IS_TASK = -103
local ERR_PARENT_MOVING = -104
local ERR_IDEM_CONFLICT = -105

-- The time is written into every row and index entry: a NaN (which ZADD refuses) must fail
-- here, not at the first ZADD after the rows are written.
if NOW == nil or NOW ~= NOW then return redis.error_reply('ERR now is not a valid float: ' .. NOW_S) end
local n = tonumber(ARGV[FIRST_ARG])
local batch = ARGV[FIRST_ARG + 1]
JOB_TTL_MS = tonumber(ARGV[FIRST_ARG + 2]) or 0
local K_MOVING = ARGV[FIRST_ARG + 3]
-- The 12 attrs fields travel as one block, copied into the row's attrs as they are. One
-- string for the whole batch: the client writes one argument, not one per task (half its CPU
-- per submitted task). The attrs block and the payload are cut by their lengths: a pattern
-- costs ~50 instructions per byte it scans. The last capture is where the blocks start ('^'
-- anchors at the entry's start).
local HEAD = '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(%d+)\t(%d+)\t()'

-- The batch's tasks in one array per field (a table per task cost ~2.5k instructions).
-- Most tasks have no parents: they share one empty list (no table and no split per task).
local NONE = {}
local anyParents = false -- whether a task of the batch names a parent
local ids, idems, parentsOf, jobOf, tenantOf, estOf, attrsOf, payloadOf, rowKeys =
  {}, {}, {}, {}, {}, {}, {}, {}, {}
local at = 1
for i = 1, n do
  local id, idem, parents, job, tenant, est, attrsLen, payloadLen, from =
    string.match(batch, HEAD, at)
  if not from then return malformed(string.sub(batch, at, at + 200)) end
  local payloadAt = from + NUM[attrsLen]
  at = payloadAt + NUM[payloadLen]
  if string.sub(batch, at, at) ~= '\n' then
    return malformed(string.sub(batch, from, from + 200))
  end
  -- The estimate is summed into the job row in phase 2: a bad one must fail here.
  if est ~= '' then
    local e = NUM[est]
    if e == nil or e ~= e or e == math.huge or e == -math.huge then
      return malformed('estimate ' .. est)
    end
  end
  ids[i], idems[i], jobOf[i], tenantOf[i], estOf[i] = id, idem, job, tenant, est
  rowKeys[i] = P_TASK .. id
  if parents == '' then
    parentsOf[i] = NONE
  else
    anyParents = true
    parentsOf[i] = split(parents, ',')
  end
  attrsOf[i] = string.sub(batch, from, payloadAt - 1)
  payloadOf[i] = string.sub(batch, payloadAt, at - 1)
  at = at + 1
end
if at ~= #batch + 1 then return malformed(string.sub(batch, at, at + 200)) end

-- Phase 1: resolve idempotency keys and check parents; nothing is written yet. One EXISTS
-- over the whole batch's ids answers the usual case (none exists) for all of them at once.
-- An existing parent's state and depth are read here, for phase 2 (stateOf, depthOf): a
-- parent with no attrs is refused now, a tombstone (state 'moved': it moved to another shard)
-- as such, any other as unknown, so phase 2 never meets a row it cannot read.
local someExist = false
for i = 1, n, 4000 do
  if redis.call('EXISTS', unpack(rowKeys, i, math.min(n, i + 3999))) > 0 then someExist = true end
end
local alias = {}     -- submitted id -> the id of the task it is
local bindKey = {}   -- submitted id -> the task its (new) idempotency key is bound to
local resent = {}    -- ids this call's own earlier run (a resend's) created
local stateOf, depthOf = {}, {} -- id -> state and depth of parents and of the batch's tasks
local fresh = {}     -- id -> batch position, for tasks this batch creates
local batchIdem = {} -- idempotency key -> id, within this batch
local jobChecked = nil -- jobs of several tasks checked against task ids (made at the first)
local tenantOfParent = {} -- id -> tenant, of parents read from the store
local moving = {} -- tenant -> whether it is moving off this shard (asked once per call)
local ENDED = { done = true, dead = true, upstream_failed = true, cancelled = true }
-- An attrs block's tenant, its third field.
local P_TENANT = '^[^\t]*\t[^\t]*\t([^\t]*)'

-- A known idempotency key (or id) sent again is a retry only with the same task: the attrs
-- fields its client chose (all but job, compared below, and critical_ms, which follows from
-- the batch) and the payload. Read on that path only (rare), never for a new task.
local A_MODELS_AT = 10
local function tabFields(s)
  local out = {}
  for f in string.gmatch(s .. '\t', '([^\t]*)\t') do out[#out + 1] = f end
  return out
end
-- GPU models are a set: the same ones in another order are the same task.
local function sortedCsv(s)
  local l = split(s, ',')
  table.sort(l)
  return table.concat(l, ',')
end
-- Decoded JSON values, deeply (a payload sent again may have its keys in another order).
local function sameJson(a, b)
  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end
  for k, v in pairs(a) do
    if not sameJson(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
local function samePayload(a, b)
  if a == b then return true end
  local okA, x = pcall(cjson.decode, a)
  local okB, y = pcall(cjson.decode, b)
  return okA and okB and sameJson(x, y)
end
local function conflict(i, existing, attrs, payload)
  -- Made here, on the rare path, not by every submit call.
  local ATTR_NAMES = { 'type', 'stage', 'tenant', 'job', 'priority', 'cpu_m', 'mem_mb', 'gpu',
    'gpu_milli', 'gpu_models', 'estimate_ms' }
  local CHOSEN = { 1, 2, 3, 5, 6, 7, 8, 9, 11 }
  local sent, had = tabFields(attrsOf[i]), tabFields(attrs)
  for _, k in ipairs(CHOSEN) do
    if sent[k] ~= had[k] then return ATTR_NAMES[k] end
  end
  if sent[A_MODELS_AT] ~= had[A_MODELS_AT]
    and sortedCsv(sent[A_MODELS_AT]) ~= sortedCsv(had[A_MODELS_AT]) then
    return 'gpu_models'
  end
  -- A task that is its own job sends no job (its job is its id): the existing one must be its
  -- own job too; a job of several tasks must be the same job.
  local job = jobOf[i]
  if job == '' then job = existing end
  if had[4] ~= job then return 'job' end
  if not samePayload(payloadOf[i], payload) then return 'payload' end
  return nil
end
for i = 1, n do
  local id, idem = ids[i], idems[i]
  local existing = false
  if fresh[id] ~= nil then existing = id end
  local byKey = false
  if not existing and idem ~= '' then
    existing = batchIdem[idem] or redis.call('HGET', K_IDEM, idem)
    byKey = existing and true
  end
  if not existing and someExist and redis.call('EXISTS', rowKeys[i]) == 1 then existing = id end
  if existing then
    local j, attrs, payload = fresh[existing], nil, nil
    if j ~= nil then
      attrs, payload = attrsOf[j], payloadOf[j]
    else
      local r = redis.call('HMGET', P_TASK .. existing, 'attrs', 'payload')
      attrs, payload = r[1], r[2]
    end
    -- A tombstone (no attrs) has nothing to compare: the task moved, "exists" as before.
    local differs = attrs and conflict(i, existing, attrs, payload)
    if differs then return { ERR_IDEM_CONFLICT, id, existing, differs, byKey and idem or '' } end
    -- A known id sent with a key no task has: the key names that task from now on (later in
    -- this batch and after), as it would had it come with the task: a retry under the key
    -- alone made a second task, and the key in this batch took another task's content. Unless
    -- the task has a key of its own already: a task has one key (pruning forgets it).
    if idem ~= '' and not byKey and attrs then
      local own
      if j ~= nil then own = idems[j] else own = redis.call('HGET', P_TASK .. existing, 'idempotency_key') end
      if own and own ~= '' and own ~= idem then
        return { ERR_IDEM_CONFLICT, id, existing, 'idempotencyKey', '' }
      end
      if not own or own == '' then bindKey[id] = existing end
      batchIdem[idem] = existing
    end
    alias[id] = existing
    -- Made by this very call: ioredis resends a script a dropped connection left unanswered,
    -- with the same arguments (its time included), after the first run wrote it. Reported as
    -- created, as the lost reply said (only a call with the same id at the same millisecond
    -- looks the same).
    if j == nil and existing == id and attrs
      and string.match(attrs, '\t([^\t]*)\t[^\t]*$') == NOW_S then
      resent[id] = true
    end
  else
    fresh[id] = i
    if idem ~= '' then batchIdem[idem] = id end
    -- A job of several tasks named after a task of the shard: that task (job == id) counts as
    -- a job of its own, so the job's row would miss it (the client refuses this within a
    -- batch). Once per job and call; a task that is its own job sends no job.
    local job = jobOf[i]
    if job ~= '' then
      if jobChecked == nil then jobChecked = {} end
      if not jobChecked[job] then
        jobChecked[job] = true
        if redis.call('EXISTS', P_TASK .. job) == 1 then return { ERR_JOB_IS_TASK, id, job } end
      end
    end
    if parentsOf[i] ~= NONE then
      for _, p in ipairs(parentsOf[i]) do
        local pid = alias[p] or p
        local earlier = fresh[pid] ~= nil and fresh[pid] < i
        if not earlier and stateOf[pid] == nil then
          local r = redis.call('HMGET', P_TASK .. pid, 'state', 'attrs')
          if r[1] == 'moved' then return { ERR_PARENT_MOVED, id, p } end
          local d = r[1] and r[2] and attrsDepth(r[2])
          if not d then return { ERR_UNKNOWN_PARENT, id, p } end
          stateOf[pid], depthOf[pid] = r[1], d
          tenantOfParent[pid] = string.match(r[2], P_TENANT)
        end
        -- An open parent of another tenant that is moving off this shard: the edge would be
        -- written here only, after (or while) the move copies the parent. An ended parent
        -- leaves no edge, and the mover's own late children are moved with it.
        local pt = (not earlier) and tenantOfParent[pid]
        if pt and not ENDED[stateOf[pid]] then
          if moving[pt] == nil then moving[pt] = redis.call('SISMEMBER', K_MOVING, pt) == 1 end
          if moving[pt] and pt ~= string.match(attrsOf[i], P_TENANT) then
            return { ERR_PARENT_MOVING, id, p, pt }
          end
        end
      end
    end
  end
end

-- Phase 2: write the new tasks.
local out = { OK, 0 }
local hasChildren = {}
local jobs = {}
local runnableAdds = zaddList(K_RUNNABLE)
-- What follows a task's attrs block in its attrs: submitted_at, then the depth.
local attrsTail = '\t' .. NOW_S .. '\t'
-- A task of a job of several tasks counts in its job's row (a task that is its own job, the
-- default, needs none).
local function countJob(i, failedParent)
  local job = jobOf[i]
  local j = jobs[job]
  if j == nil then
    j = { n = 0, ended = 0, work = 0, tenant = tenantOf[i], ids = {} }
    jobs[job] = j
  end
  j.n = j.n + 1
  j.ids[j.n] = ids[i]
  if failedParent then j.ended = j.ended + 1 end
  local est = estOf[i]
  if est ~= '' and not failedParent then j.work = j.work + NUM[est] end
end
for i = 1, n do
  local id = ids[i]
  local idem = idems[i]
  if resent[id] then
    -- Written by the run whose reply was lost: reported as it would have been.
  elseif alias[id] ~= nil then
    out[#out + 1] = i
    out[#out + 1] = alias[id]
    out[2] = out[2] + 1
    local bound = bindKey[id]
    if bound and redis.call('HSETNX', K_IDEM, idem, bound) == 1 then
      redis.call('HSET', P_TASK .. bound, 'idempotency_key', idem)
    end
  elseif parentsOf[i] == NONE and idem == '' then
    -- The usual task, with no parents and no idempotency key: runnable at once, depth 0.
    -- The key carries the id, and a task runnable at once is ready when it was submitted: the
    -- row stores neither (every field costs a write and an AOF append).
    redis.call('HSET', rowKeys[i], '_v', '1', 'attrs', attrsOf[i] .. attrsTail .. '0', 'payload',
      payloadOf[i], 'state', 'runnable')
    runnableAdds[#runnableAdds + 1] = NOW_S
    runnableAdds[#runnableAdds + 1] = id
    -- Only a later task of this batch naming it as a parent reads these.
    if anyParents then stateOf[id], depthOf[id] = 'runnable', 0 end
    local job = jobOf[i]
    if job ~= '' and job ~= id then countJob(i, false) end
  else
    local open, depth, failedParent = 0, 0, false
    local parents = parentsOf[i]
    local resolved = parents == NONE and NONE or {}
    -- A parent named twice (or twice through idempotency aliases) is one edge: the children
    -- set holds it once and its completion counts down `pending` once.
    local seen = #parents > 1 and {} or nil
    for _, p in ipairs(parents) do
      local pid = alias[p] or p
      if seen == nil or not seen[pid] then
        if seen then seen[pid] = true end
        resolved[#resolved + 1] = pid
        -- Read in phase 1 (a parent of the store), or written earlier in this batch.
        local st, d = stateOf[pid], depthOf[pid]
        if st == 'dead' or st == 'upstream_failed' or st == 'cancelled' then
          failedParent = pid
        elseif st ~= 'done' then
          open = open + 1
          redis.call('SADD', P_CHILDREN .. pid, id)
          if not hasChildren[pid] then
            hasChildren[pid] = true
            redis.call('HSET', P_TASK .. pid, 'has_children', 1)
          end
        end
        if d + 1 > depth then depth = d + 1 end
      end
    end
    local state = 'runnable'
    if failedParent then state = 'upstream_failed' elseif open > 0 then state = 'pending' end
    if anyParents then stateOf[id], depthOf[id] = state, depth end
    local row = { '_v', '1', 'attrs', attrsOf[i] .. attrsTail .. STR[depth], 'payload',
      payloadOf[i], 'state', state }
    if idem ~= '' then
      row[#row + 1] = 'idempotency_key'
      row[#row + 1] = idem
      redis.call('HSET', K_IDEM, idem, id)
    end
    if #resolved > 0 then
      row[#row + 1] = 'parents'
      row[#row + 1] = table.concat(resolved, ',')
    end
    if open > 0 then
      row[#row + 1] = 'pending'
      row[#row + 1] = open
    end
    if failedParent then
      row[#row + 1] = 'error'
      row[#row + 1] = 'parent ' .. failedParent .. ' failed'
      row[#row + 1] = 'finished_at'
      row[#row + 1] = NOW_S
    end
    if state == 'runnable' then
      runnableAdds[#runnableAdds + 1] = NOW_S
      runnableAdds[#runnableAdds + 1] = id
    elseif failedParent then
      -- Ended already: in the dead index, so retention removes it like a dead letter.
      zaddLater(K_DEAD, NOW_S, id)
    end
    redis.call('HSET', rowKeys[i], unpack(row))
    local job = jobOf[i]
    if job ~= '' and job ~= id then countJob(i, failedParent) end
  end
end
local anyRunnable = #runnableAdds > 0
-- Tasks that became runnable, counted (the dispatcher's look past a blocked head asks).
if anyRunnable then redis.call('HINCRBY', K_STATS, 'runnable_in', #runnableAdds / 2) end
flushIndexes()

for job, j in pairs(jobs) do
  local k = P_JOB .. job
  -- A row made now has every task of its job in its set of tasks (JOB_TASKS): a job's cancel
  -- refuses a row without the mark (made before the sets existed).
  if redis.call('HSETNX', k, 'id', job) == 1 then redis.call('HSET', k, 'tasks_indexed', '1') end
  redis.call('HSETNX', k, 'tenant', j.tenant)
  redis.call('HSETNX', k, 'submitted_at', NOW_S)
  redis.call('HINCRBY', k, 'total', j.n)
  local left = redis.call('HINCRBY', k, 'remaining', j.n - j.ended)
  if j.ended > 0 then redis.call('HINCRBY', k, 'dead', j.ended) end
  if j.work > 0 then redis.call('HINCRBYFLOAT', k, 'remaining_work_ms', j.work) end
  redis.call('HINCRBY', k, '_v', 1)
  bulk('SADD', k .. JOB_TASKS, j.ids)
  if left > 0 then
    -- A job that had finished and gets more tasks is open again.
    redis.call('HDEL', k, 'finished_at')
    redis.call('PERSIST', k)
    redis.call('PERSIST', k .. JOB_TASKS)
  else
    -- Every task of it ended here (upstream_failed at submit): no later step would end it,
    -- so it finishes now, as jobTaskEnded finishes a job, and the caller reports it.
    redis.call('HSET', k, 'finished_at', NOW_S)
    if JOB_TTL_MS > 0 then
      redis.call('PEXPIRE', k, JOB_TTL_MS)
      redis.call('PEXPIRE', k .. JOB_TASKS, JOB_TTL_MS)
    end
    out[#out + 1] = job
    out[#out + 1] = j.tenant
    out[#out + 1] = math.max(0, NOW - tonumber(redis.call('HGET', k, 'submitted_at') or NOW))
  end
end
if anyRunnable then ring() end
return out
