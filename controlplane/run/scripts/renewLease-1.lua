--[[
  Renews the node lease if this node still holds it.

  Input:
    KEYS[1]  the lease key
    ARGV[1]  the holder's record (JSON, as it was set)
    ARGV[2]  time to live (ms)

  Output: 1 renewed, 0 not ours any more (expired and taken, or deleted)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
