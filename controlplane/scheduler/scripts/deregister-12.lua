--[[
  Removes a worker that stops: its row, its liveness entry and its inbox. A copy whose run entry
  is still in the inbox never started: it goes back to the queue at once (its lease and the
  capacity it held released, no attempt counted; a speculative copy is dropped, and a primary
  whose speculative copy runs leaves that one as the task's only copy). Copies the worker still
  runs keep their leases (the runtime settles those it aborts as failed: worker.ts) and are
  requeued when those expire.

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); touches workers, runnable, leases
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     worker id

  Output:
    { 1 when the worker existed else 0, copies given back from its inbox }
]]
--@include "includes/shard.lua"

local wid = ARGV[FIRST_ARG]
local inbox = P_INBOX .. wid
local returned = 0
for _, e in ipairs(redis.call('LRANGE', inbox, 0, -1)) do
  if giveBackRunEntry(e) then returned = returned + 1 end
end
-- The released capacity is written before the row goes (flushWorkers would write it again).
flushWorkers()
flushTenants()
local existed = redis.call('DEL', P_WORKER .. wid)
redis.call('DEL', inbox, inbox .. '!')
redis.call('ZREM', K_WORKERS, wid)
if returned > 0 then ring() end
return { existed, returned }
