--[[
  Releases the node lease if this node holds it (never another node's).

  Input:
    KEYS[1]  the lease key
    ARGV[1]  the holder's record (JSON, as it was set)

  Output: 1 released, 0 not ours
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
