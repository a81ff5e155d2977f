--[[
  Takes the node lease from a holder known to be dead, only if it still holds it (a record
  read before, compared whole, so a live node that took the lease meanwhile keeps it).

  Input:
    KEYS[1]  the lease key
    ARGV[1]  the dead holder's record (JSON, as read)
    ARGV[2]  this node's record
    ARGV[3]  time to live (ms)

  Output: 1 taken, 0 the record changed (another node holds the lease now)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
