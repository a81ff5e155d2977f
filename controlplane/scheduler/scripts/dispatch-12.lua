--[[
  One dispatch round trip: claims the assignments the policy chose last round, then reads the
  snapshot the policy needs for the next one (live workers with free capacity, and a window of
  the oldest runnable tasks). A claim checks everything it relies on: the task is still
  runnable, the worker is alive, runs the task's type and has the slots, cores, memory and GPU
  devices; it then
  leases the task (a fresh token, an attempt counted, the lease expiry indexed) and pushes it
  to the worker's inbox, which the worker blocks on.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); touches runnable, leases, workers,
                 tenant_running, tenant_served, seq
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     lease_ms for these claims
    ARGV[11]     retry_limit handed to the worker with each claimed copy
    ARGV[12]     retry_backoff_ms handed likewise
    ARGV[13]     window: most runnable tasks to return (0 = no snapshot)
    ARGV[14]     most workers to return (read in pages of this many until as many free ones
                 are found, at most max(this, WORKERS_SCANNED_MAX) live workers read)
    ARGV[15]     most runnable tasks returned per free slot (the window shrinks to it) ...
    ARGV[16]     ... but not below this many
    ARGV[17]     the dispatcher's marker: '<ready time>\t<id>' of the last window entry whose
                 attrs it holds ('' = none); entries up to it come back without their attrs
    ARGV[18]     tenants (csv) whose running count and service to return besides the new ones
    ARGV[19]     jobs (csv) whose remaining work to return besides the new ones
    ARGV[20]     number of assignments n
    ARGV[21]     the n assignments in one string, grouped by worker: a line '\t<worker id>'
                 starts a group, then a line '<task id>\t<GPU devices (csv)>' per assignment
                 (each line ended by a newline); statuses come back in this order
    ARGV[22]     where the window starts: '' at the oldest runnable task, or
                 '<ready time>\t<id>' of an entry to start after (the dispatcher looking past
                 tasks no free worker runs; an entry gone since: after its ready time)

  Output:
    { n, status_1, ... status_n,
      runnable count,
      { id, ready_at, ... } the window (oldest runnable first),
      h, how many of its first entries are up to the marker,
      the rank of its first entry, tasks made runnable so far (a counter: submit,
      makeRunnable and a migration's thaw and unfreeze count them),
      (attempts, attrs) for each later entry,
      m, (tenant, running, served_ms) x m,
      j, (job, remaining_work_ms) x j (jobs with a row; a task that is its own job has none),
      w, (id, cpu_m, mem_mb, gpu, free_cpu_m, free_mem_mb, gpu_free csv, free_slots, gpu_model,
        task types csv or '*' for every type) x w }
    status: 'ok' | 'gone' (no longer runnable) | 'noworker' (missing or dead) | 'full' |
      'unhandled' (the worker does not run the task's type)
]]
--@include "includes/shard.lua"

local leaseMsS = ARGV[FIRST_ARG]
local leaseUntil = STR[NOW + tonumber(leaseMsS)]
local retryLimit = ARGV[FIRST_ARG + 1]
local backoffMs = ARGV[FIRST_ARG + 2]
local window = tonumber(ARGV[FIRST_ARG + 3])
local windowPerSlot = tonumber(ARGV[FIRST_ARG + 5])
local windowMin = tonumber(ARGV[FIRST_ARG + 6])
local markScore, markId = string.match(ARGV[FIRST_ARG + 7], '^([^\t]+)\t(.*)$')
markScore = tonumber(markScore)
local knownTenants = split(ARGV[FIRST_ARG + 8], ',')
local knownJobs = split(ARGV[FIRST_ARG + 9], ',')
local n = tonumber(ARGV[FIRST_ARG + 10])
local assignments = ARGV[FIRST_ARG + 11]
local afterScore, afterId = string.match(ARGV[FIRST_ARG + 12] or '', '^([^\t]+)\t(.*)$')

-- One string for all assignments (the client writes one argument), grouped by worker so a
-- worker id is scanned once per group (a pattern costs ~50 instructions per byte it scans). A
-- line with an empty first field starts a group (task ids are never empty). The last capture
-- is where the next line starts ('^' anchors at it).
local P_ASSIGNMENT = '^([^\t\n]*)\t([^\n]*)\n()'
-- Most live workers one round reads looking for free ones (each is a row read).
local WORKERS_SCANNED_MAX = 1024
-- What a claim uses of the attrs: type, tenant, cpu_m, mem_mb, gpu, gpu_milli.
local P_ATTRS_CLAIM = '^([^\t]*)\t[^\t]*\t([^\t]*)\t[^\t]*\t[^\t]*\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)'
local out = { n }
-- The whole string is parsed before the first write (into one array per field, no table per
-- claim): a malformed line found after some claims were written would leave those tasks
-- leased with no lease entry, no inbox entry and nothing counted on their worker.
local idOf, gpusOf, widOf = {}, {}, {}
local at = 1
local wid = nil
for i = 1, n do
  local id, gpus, nextAt = string.match(assignments, P_ASSIGNMENT, at)
  if id == '' then
    wid = gpus
    at = nextAt
    id, gpus, nextAt = string.match(assignments, P_ASSIGNMENT, at)
  end
  if not nextAt or id == '' or not wid then
    return malformed(string.sub(assignments, at, at + 200))
  end
  at = nextAt
  idOf[i], gpusOf[i], widOf[i] = id, gpus, wid
end
if n > 0 and at ~= #assignments + 1 then
  return malformed(string.sub(assignments, at, at + 200))
end

local inbox = {}
local seqTop = 0
if n > 0 then seqTop = redis.call('INCRBY', K_SEQ, ARGV[FIRST_ARG + 10]) end
-- The claim loop appends to the index lists and counters itself and builds the lease and the
-- inbox entry from parts that are the same for the whole call (or the worker's group): a
-- helper call or a string piece per claim costs more than the append.
local runnableRems, leaseAdds = zremList(K_RUNNABLE), zaddList(K_LEASES)
local entryTail = '\t' .. leaseMsS .. '\t' .. retryLimit .. '\t' .. backoffMs .. '\t'
local list, leaseMid = nil, nil
wid = nil
for i = 1, n do
  local id, gpus = idOf[i], gpusOf[i]
  if widOf[i] ~= wid then
    wid = widOf[i]
    list = inbox[wid]
    if list == nil then
      list = {}
      inbox[wid] = list
    end
    leaseMid = '\t' .. wid .. '\t' .. NOW_S .. '\t'
  end
  local key = P_TASK .. id
  local r = redis.call('HMGET', key, 'state', 'attrs', 'attempts', 'payload')
  local status = 'ok'
  if r[1] ~= 'runnable' then
    status = 'gone'
  else
    local typ, tenant, cpu, mem, gpu, gpuMilli = string.match(r[2], P_ATTRS_CLAIM)
    cpu, mem, gpu = NUM[cpu], NUM[mem], NUM[gpu]
    local w = workerCache[wid]
    if w == nil then w = loadWorker(wid) end
    if not w or w.deadline < NOW then
      status = 'noworker'
    elseif not runsType(w, typ) then
      status = 'unhandled'
    elseif w.usedSlots + 1 > w.slots or w.usedCpu + cpu > w.cpu or w.usedMem + mem > w.mem
      or (gpu > 0 and (not gpuFits(w, gpu, NUM[gpuMilli], gpus) or not gpuModelOk(r[2], w))) then
      status = 'full'
    else
      local token = string.format('%d', seqTop - n + i)
      local attempts = STR[NUM[r[3] or '0'] + 1]
      -- The attempt count lives in the lease while the copy runs (a failure writes it back).
      -- The lease: token, worker, leased_at, GPU devices, incarnation, attempt (packLease).
      -- The claim leaves `_v` as it is (see includes/shard.lua).
      redis.call('HSET', key, 'state', 'leased', 'lease', token .. leaseMid .. gpus .. '\t' ..
        w.inc .. '\t' .. attempts)
      runnableRems[#runnableRems + 1] = id
      leaseAdds[#leaseAdds + 1] = leaseUntil
      leaseAdds[#leaseAdds + 1] = id .. '|' .. token
      if gpu > 0 then
        account(w, 1, cpu, mem, gpu, NUM[gpuMilli], gpus)
      else
        -- account() without the call (no GPU devices to take).
        w.usedSlots = w.usedSlots + 1
        w.usedCpu = w.usedCpu + cpu
        w.usedMem = w.usedMem + mem
        w.dirty = true
      end
      tenantDelta[tenant] = (tenantDelta[tenant] or 0) + 1
      -- The inbox entry (runEntry): token, id, type, attempt, lease_ms, retry_limit,
      -- retry_backoff_ms, payload.
      list[#list + 1] = token .. '\t' .. id .. '\t' .. typ .. '\t' .. attempts .. entryTail .. r[4]
    end
  end
  out[i + 1] = status
end
-- Before the snapshot: the claimed tasks leave the runnable index here.
flushWorkers()
flushTenants()
for wid, list in pairs(inbox) do bulk('RPUSH', P_INBOX .. wid, list) end

-- The snapshot. Workers first: without free capacity there is nothing to choose.
local queued = redis.call('ZCARD', K_RUNNABLE)
out[#out + 1] = queued
local free, freeSlots = {}, 0
if window > 0 and queued > 0 then
  -- Live workers in pages of workersMax until workersMax free ones are found: a single page
  -- would hide idle workers behind busy ones with earlier deadlines. Bounded: at most
  -- WORKERS_SCANNED_MAX live workers are read per round (more only if workersMax is larger).
  -- With at most workersMax live workers (the usual case) this is the one page as before.
  local workersMax = tonumber(ARGV[FIRST_ARG + 4])
  local scanMax = math.max(workersMax, WORKERS_SCANNED_MAX)
  local offset = 0
  while #free < workersMax and offset < scanMax do
    local page = redis.call('ZRANGEBYSCORE', K_WORKERS, NOW_S, '+inf', 'LIMIT', STR[offset],
      STR[math.min(workersMax, scanMax - offset)])
    for _, wid in ipairs(page) do
      local w = loadWorker(wid)
      if w and w.usedSlots < w.slots and #free < workersMax then
        free[#free + 1] = w
        freeSlots = freeSlots + w.slots - w.usedSlots
      end
    end
    if #page < workersMax then break end
    offset = offset + #page
  end
end
-- The policy chooses among at least windowMin candidates, and beyond that at most
-- windowPerSlot per free slot: re-reading a long window to fill two slots costs more than the
-- choice is worth, but a window of two would leave the policy no choice at all.
if freeSlots == 0 then
  window = 0
elseif window > math.max(windowMin, freeSlots * windowPerSlot) then
  window = math.max(windowMin, freeSlots * windowPerSlot)
end

local tasks = {}
local start = 0
if window > 0 then
  if afterId then
    -- The entry where the caller left it (one claimed and requeued since has a later score).
    local score = redis.call('ZSCORE', K_RUNNABLE, afterId)
    if score and tonumber(score) == tonumber(afterScore) then
      start = redis.call('ZRANK', K_RUNNABLE, afterId) + 1
    else
      start = redis.call('ZCOUNT', K_RUNNABLE, '-inf', '(' .. afterScore)
    end
  end
  tasks = redis.call('ZRANGE', K_RUNNABLE, STR[start], STR[start + window - 1], 'WITHSCORES')
end
-- The window goes back as Redis gave it (no string is built per entry), then how many of its
-- first entries the dispatcher holds already: what never changes of every task up to its
-- marker (a retried task comes back with a later ready time, past the marker). The window is
-- in (ready time, id) order, so those entries come first.
out[#out + 1] = tasks
local held = 0
if markScore then
  for i = 1, #tasks, 2 do
    local s, id = NUM[tasks[i + 1]], tasks[i]
    if s < markScore or (s == markScore and id <= markId) then held = held + 1 else break end
  end
end
out[#out + 1] = held
out[#out + 1] = start
out[#out + 1] = redis.call('HGET', K_STATS, 'runnable_in') or '0'
local tenants, tenantList, jobs, jobList = {}, {}, {}, {}
local function wantTenant(t)
  if t and t ~= '' and not tenants[t] then
    tenants[t] = true
    tenantList[#tenantList + 1] = t
  end
end
local function wantJob(j, id)
  if j and j ~= '' and j ~= id and not jobs[j] then
    jobs[j] = true
    jobList[#jobList + 1] = j
  end
end
for _, t in ipairs(knownTenants) do wantTenant(t) end
for _, j in ipairs(knownJobs) do wantJob(j, '') end
local no = #out
for i = 2 * held + 1, #tasks, 2 do
  local id = tasks[i]
  local r = redis.call('HMGET', P_TASK .. id, 'attempts', 'attrs')
  local attrs = r[2] or ''
  out[no + 1] = r[1] or '0'
  out[no + 2] = attrs
  no = no + 2
  local tenant, job = string.match(attrs, '^[^\t]*\t[^\t]*\t([^\t]*)\t([^\t]*)')
  -- The helpers only for a tenant or job not seen yet (a call per entry costs ~400
  -- instructions; a task that is its own job has no job row).
  if tenant and not tenants[tenant] then wantTenant(tenant) end
  if job and job ~= id and not jobs[job] then wantJob(job, id) end
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
  out[#out + 1] = w.typesCsv
end
return out
