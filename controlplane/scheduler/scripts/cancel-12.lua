--[[
  Cancels a task that has not ended: it will not run (again), in one atomic step. A pending,
  runnable or delayed task leaves its index (a pending one also its parents' children sets); a
  leased task's copies (the primary and a speculative one) give back their capacity, and each
  copy's run entry still queued in its worker's inbox is taken out, or, once the worker took it,
  the worker is told to stop it (the inbox's cancel entry: the handler's signal aborts, and a
  completion that still arrives is stale). The row says 'cancelled', who cancelled it and why;
  the task joins the dead index
  (by the time it ended, no dead-letter row: a cancel is no failure to inspect), so retention
  removes it as it removes dead letters; its job counts it as failed; tasks downstream of it
  become upstream_failed (cascadeUpstreamFailed in includes/shard.lua, bounded, the reaper
  carrying on past the bound).

  A live placement move of the task's tenant off this shard (the tenant is in the shard's
  moving-tenants set from the freeze until the move is done or refused) copies the tenant's rows
  as they are once none of its copies runs here: a cancel then is refused ('moving'), but for
  a leased task, whose row cannot have been copied yet (the copy waits for the tenant's last
  lease), so its cancel is carried by the copy. Frozen tasks ('moving') are refused too. The
  caller refuses the move's other side (client.ts).

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua)
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     finished job row time to live (ms)
    ARGV[11]     task id
    ARGV[12]     who cancels (actor)
    ARGV[13]     why ('' = not given)
    ARGV[14]     the shard's moving-tenants set (keys.ts movingTenants)
    ARGV[15]     this call's id (fresh per call; kept on the row with the reply)

  Output:
    { status, state, dependents marked upstream_failed,
      j, (task id, job, tenant, job completion ms) x j (jobs the cancel, or its cascade, ended) }
    status 'cancelled' (done now, or by this same call's first run: a resend answers what it
    did, kept on the row as `cancel_reply`), 'already' (cancelled before: nothing written),
    'refused' (state says why: done, dead, upstream_failed, moving; 'moving' also for a task that is not
    leased of a tenant moving off this shard), 'moved' (a tombstone: the task is on another
    shard now), 'unknown'. The reply's second field is the task's tenant when it exists.
]]
--@include "includes/shard.lua"

JOB_TTL_MS = tonumber(ARGV[FIRST_ARG])
local id, actor, reason = ARGV[FIRST_ARG + 1], ARGV[FIRST_ARG + 2], ARGV[FIRST_ARG + 3]
local K_MOVING = ARGV[FIRST_ARG + 4]
local call = ARGV[FIRST_ARG + 5] or ''

-- Takes a copy's run entry out of its worker's inbox if the worker has not taken it yet; else
-- tells the worker to stop it. Read a page at a time (entries carry payloads), up to the entry.
local PAGE = 100
local function stopCopy(workerId, token)
  local inbox = P_INBOX .. workerId
  local head = token .. '\t' .. id .. '\t'
  local from = 0
  repeat
    local page = redis.call('LRANGE', inbox, from, from + PAGE - 1)
    for _, e in ipairs(page) do
      if string.sub(e, 1, #head) == head then
        redis.call('LREM', inbox, 0, e)
        return
      end
    end
    from = from + PAGE
  until #page < PAGE
  cancelCopy(workerId, token, id)
end

local t = loadTask(id)
if not t then
  if redis.call('HGET', P_TASK .. id, 'state') == 'moved' then return { 'moved', '', 0, 0 } end
  return { 'unknown', '', 0, 0 }
end
if t.state == 'cancelled' then
  -- This very call's first run cancelled it: ioredis resends a script a dropped connection
  -- left unanswered, with the same arguments (its call id included). It answers what that run
  -- did, kept on the row, not 'already' (the caller would report nothing changed, and no job
  -- end).
  local r = redis.call('HMGET', t.key, 'cancel_call', 'cancel_reply')
  if call ~= '' and r[1] == call and r[2] then
    local again = {}
    for f in string.gmatch(r[2] .. '\t', '([^\t]*)\t') do again[#again + 1] = f end
    return again
  end
  return { 'already', t.tenant, 0, 0 }
end
local OPEN = { pending = true, runnable = true, delayed = true, leased = true }
if not OPEN[t.state] then return { 'refused', t.tenant, 0, 0, t.state } end
if t.state ~= 'leased' and redis.call('SISMEMBER', K_MOVING, t.tenant) == 1 then
  return { 'refused', t.tenant, 0, 0, 'moving' }
end

local released = false
if t.state == 'runnable' then
  redis.call('ZREM', K_RUNNABLE, id)
elseif t.state == 'delayed' then
  redis.call('ZREM', K_DELAYED, id)
elseif t.state == 'leased' then
  if t.lease ~= '' then
    releaseCopy(t, false)
    stopCopy(t.worker, t.lease)
  end
  if t.specLease ~= '' then
    releaseCopy(t, true)
    stopCopy(t.specWorker, t.specLease)
  end
  clearLeaseFields(t.key)
  -- The running copy's attempt was in its lease (as failCopy keeps it).
  redis.call('HSET', t.key, 'attempts', t.attempts)
  released = true
end
if t.state == 'pending' then
  -- Its parents' completion (settle) and death (the cascade) change only children still
  -- 'pending'; out of their sets, nothing names it once retention removes its row.
  for p in string.gmatch(redis.call('HGET', t.key, 'parents') or '', '[^,]+') do
    redis.call('SREM', P_CHILDREN .. p, id)
  end
end
local err = 'cancelled by ' .. actor
if reason ~= '' then err = err .. ': ' .. reason end
redis.call('HSET', t.key, 'state', 'cancelled', 'error', err, 'finished_at', NOW_S,
  'cancelled_by', actor)
redis.call('HINCRBY', t.key, '_v', 1)
zaddLater(K_DEAD, NOW_S, id)
if t.job ~= id then redis.call('HINCRBY', P_JOB .. t.job, 'dead', 1) end
local ended = {}
local ms = jobTaskEnded(id, t.job, t.estimate, t.submittedAt)
if ms >= 0 then appendJobEnded(ended, id, t.job, t.tenant, ms) end
local marked = 0
if t.hasChildren then marked = cascadeUpstreamFailed({ id }, t.job, ended) end
flushWorkers()
flushTenants()
if released then ring() end
local out = { 'cancelled', t.tenant, marked, #ended / 4 }
for _, v in ipairs(ended) do out[#out + 1] = v end
redis.call('HSET', t.key, 'cancel_call', call, 'cancel_reply', table.concat(out, '\t'))
return out
