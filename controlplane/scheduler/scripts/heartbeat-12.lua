--[[
  A worker's heartbeat: registers the worker when its row is missing (its first beat, or after
  it was declared dead), moves its liveness deadline, and renews the leases of the copies the
  worker sends: those whose renewal is due (a third of their lease after the last grant), so
  short tasks finish without ever being renewed and most beats carry nothing. A copy the
  worker no longer holds (expired and requeued, lost to the other copy, or claimed under an
  older incarnation of the worker) comes back as lost, and the worker stops it. A row created
  for a worker that had been declared dead gets a new incarnation: its older copies are void,
  so the capacity counts of the new row stay exact. Slots sent below the copies claimed on the
  worker give back its newest run entries still in the inbox (requeued, no attempt counted).

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); touches workers, leases, seq, doorbell
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     worker id
    ARGV[11]     heartbeat interval (ms); the worker counts as dead 3 intervals after a beat
    ARGV[12..17] capacity: cpu_m, mem_mb, gpu devices, gpu model ('' = none), slots (also
                 written to an existing row: 0 while the worker drains), host
    ARGV[18]     pid
    ARGV[19]     task types the worker runs (csv; '*' = every type), written on every beat
    ARGV[20]     this call's id (fresh per call; a row this call creates keeps it)
    ARGV[21]     number of copies to renew n
    ARGV[22..]   n copies of 3 fields: task id, lease token, lease_ms it was claimed with

  Output:
    { registered (1 = the row was created now, or by this same call's first run: a resend,
      which carries the same call id), incarnation, lost token, ... }
]]
--@include "includes/shard.lua"

local wid = ARGV[FIRST_ARG]
local hb = tonumber(ARGV[FIRST_ARG + 1])
local gpu = tonumber(ARGV[FIRST_ARG + 4])
local call = ARGV[FIRST_ARG + 10]
local n = tonumber(ARGV[FIRST_ARG + 11])
local base = FIRST_ARG + 12
local k = P_WORKER .. wid
local deadline = NOW + 3 * hb

local created = 0
local row = redis.call('HMGET', k, 'inc', 'created_call', 'cpu_m', 'mem_mb', 'gpu', 'gpu_model')
local inc = row[1]
-- A row this very call created: ioredis resends a script a dropped connection left unanswered,
-- with the same arguments (its call id included). The worker must still hear it was
-- registered anew, or the copies of its void incarnation run on.
if inc and row[2] == call then created = 1 end
-- Other capacity than the row's (a worker restarted under the same id on other hardware
-- before the reaper removed it): a new incarnation, as after its death. Kept, the old figures
-- were claimed against: a worker beating with 1 core and 500 MB took 2 cores and 800 MB.
if inc and created == 0 and (row[3] ~= ARGV[FIRST_ARG + 2] or row[4] ~= ARGV[FIRST_ARG + 3]
    or tonumber(row[5]) ~= gpu or (row[6] or '') ~= ARGV[FIRST_ARG + 5]) then
  inc = nil
end
if not inc then
  created = 1
  inc = tostring(redis.call('INCR', K_SEQ))
  local gpuFree = {}
  for i = 1, gpu do gpuFree[i] = 1000 end
  redis.call('HSET', k, '_v', 1, 'id', wid, 'inc', inc, 'cpu_m', ARGV[FIRST_ARG + 2], 'mem_mb',
    ARGV[FIRST_ARG + 3], 'gpu', gpu, 'gpu_model', ARGV[FIRST_ARG + 5], 'slots',
    ARGV[FIRST_ARG + 6], 'host', ARGV[FIRST_ARG + 7], 'pid', ARGV[FIRST_ARG + 8], 'used_slots', 0,
    'used_cpu_m', 0, 'used_mem_mb', 0, 'used_gpu_m', 0, 'gpu_free', table.concat(gpuFree, ','),
    'started_at', NOW_S, 'created_call', call)
end
local deadlineS = STR[deadline]
-- Slots are written on every beat: a draining worker beats with 0, so no claim lands on it.
-- So are the types: a worker restarted under the same id may run others.
redis.call('HSET', k, 'heartbeat_at', NOW_S, 'heartbeat_ms', ARGV[FIRST_ARG + 1], 'heartbeat_deadline',
  deadlineS, 'slots', ARGV[FIRST_ARG + 6], 'types', ARGV[FIRST_ARG + 9])
redis.call('ZADD', K_WORKERS, deadlineS, wid)

local out = { created, inc }
for i = 1, n do
  local o = base + (i - 1) * 3
  local id, token, leaseMs = ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 2])
  local r = redis.call('HMGET', P_TASK .. id, 'state', 'lease', 'spec_lease')
  local held = false
  if r[1] == 'leased' then
    for j = 2, 3 do
      if r[j] then
        local tk, worker, _, _, copyInc = string.match(r[j], P_LEASE)
        if tk == token and worker == wid and copyInc == inc then held = true end
      end
    end
  end
  if held then
    redis.call('ZADD', K_LEASES, 'XX', NOW + leaseMs, id .. '|' .. token)
  else
    out[#out + 1] = token
  end
end
-- Slots below the copies claimed here (a cancelled copy whose handler runs on now counts
-- against them: the worker beats at once after such a cancel): the newest run entries still
-- in the inbox go back to the queue, no attempt counted, as at deregister. Left there, a claim
-- made on the slot the cancel freed waited behind the hung copy while its lease ran out.
local given = 0
if created == 0 then
  local slots = tonumber(ARGV[FIRST_ARG + 6]) or 0
  local used = tonumber(redis.call('HGET', k, 'used_slots') or '0') or 0
  if used > slots then
    local inbox = P_INBOX .. wid
    local entries = redis.call('LRANGE', inbox, 0, -1)
    for i = #entries, 1, -1 do
      if used - given <= slots then break end
      if giveBackRunEntry(entries[i]) then
        redis.call('LREM', inbox, 1, entries[i])
        given = given + 1
      end
    end
    if given > 0 then
      flushWorkers()
      flushTenants()
    end
  end
end
if created == 1 or given > 0 then ring() end
return out
