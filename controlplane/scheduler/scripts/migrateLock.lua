--[[
  Live placement migration: renews (ARGV[2] > 0) or releases (ARGV[2] = 0) a migrator's lease
  on a tenant's move, only while the caller still holds it: a migrator whose lease ran out and
  was taken by another must not extend or delete the other's. A lease that merely ran out (a
  stall past the lease, and nobody took it) is the caller's still: it is taken again (before,
  it counted as lost, and the move stopped with nobody to resume it).

  Input:  KEYS[1] the lock   ARGV[1] the caller's owner token   ARGV[2] lease (ms), or 0
  Output: 1 when the caller held it (or it was free), 0 when another holds it
]]
local owner = redis.call('GET', KEYS[1])
if not owner then
  if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') end
  return 1
end
if owner ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
