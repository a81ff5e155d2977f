--[[
  Removes the consumers of a group that hold nothing and have not read for a long time
  (crashed instances), so the group's consumer list stays bounded. One atomic step: done as
  a read and then a delete from the client, a consumer that read in between lost its new
  pending entries with the delete, and its commit then found them gone.

  Input:
    KEYS[1] the partition stream
    ARGV[1] group
    ARGV[2] the calling consumer (never removed)
    ARGV[3] idle time (ms) past which a consumer holding nothing is gone

  Output: how many consumers were removed
]]
local goneMs = tonumber(ARGV[3])
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c - 1, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0 and tonumber(f['idle']) > goneMs then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed
