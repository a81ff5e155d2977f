--[[
  A worker's heartbeat: registers the worker when its row is missing (its first beat, or after
  it was declared dead) and moves its liveness deadline. A beat costs the same whatever the
  worker runs: leases are not renewed here, the reaper extends a lease whose worker is still
  alive when it comes due (reap-12.lua). A row created for a worker that had been declared
  dead gets a new incarnation: the copies it ran before are void (the reaper requeues them and
  their completions are stale), so the worker drops them, and the capacity counts stay exact.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); touches workers, seq, doorbell
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     worker id
    ARGV[11]     heartbeat interval (ms); the worker counts as dead 3 intervals after a beat
    ARGV[12..17] capacity: cpu_m, mem_mb, gpu devices, gpu model ('' = none), slots, host
    ARGV[18]     pid

  Output:
    { registered (1 = the row was created now), incarnation }
]]
--@include "includes/shard.lua"

local wid = ARGV[FIRST_ARG]
local hb = tonumber(ARGV[FIRST_ARG + 1])
local gpu = tonumber(ARGV[FIRST_ARG + 4])
local k = P_WORKER .. wid
local deadline = NOW + 3 * hb

local created = 0
local inc = redis.call('HGET', k, 'inc')
if not inc then
  created = 1
  inc = tostring(redis.call('INCR', K_SEQ))
  local gpuFree = {}
  for i = 1, gpu do gpuFree[i] = 1000 end
  redis.call('HSET', k, '_v', 1, 'id', wid, 'inc', inc, 'cpu_m', ARGV[FIRST_ARG + 2], 'mem_mb',
    ARGV[FIRST_ARG + 3], 'gpu', gpu, 'gpu_model', ARGV[FIRST_ARG + 5], 'slots',
    ARGV[FIRST_ARG + 6], 'host', ARGV[FIRST_ARG + 7], 'pid', ARGV[FIRST_ARG + 8], 'used_slots', 0,
    'used_cpu_m', 0, 'used_mem_mb', 0, 'used_gpu_m', 0, 'gpu_free', table.concat(gpuFree, ','),
    'started_at', NOW_S)
end
redis.call('HSET', k, 'heartbeat_at', NOW_S, 'heartbeat_ms', hb, 'heartbeat_deadline', deadline)
redis.call('ZADD', K_WORKERS, deadline, wid)
if created == 1 then ring() end
return { created, inc }
