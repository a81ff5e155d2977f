--[[
  Removes a worker that stops: its row, its liveness entry and its inbox. Copies it still holds
  keep their leases and are requeued when those expire (a graceful stop drains first).

  Input:
    KEYS[1..12]  the shard keys (includes/shard.lua); touches workers
    ARGV[1..9]   now, id prefixes (includes/shard.lua)
    ARGV[10]     worker id

  Output:
    { 1 } when the worker existed, { 0 } otherwise
]]
--@include "includes/shard.lua"

local wid = ARGV[FIRST_ARG]
local existed = redis.call('DEL', P_WORKER .. wid)
redis.call('DEL', P_INBOX .. wid)
redis.call('ZREM', K_WORKERS, wid)
return { existed }
