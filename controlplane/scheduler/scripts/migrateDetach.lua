--[[
  Live placement migration, with each freeze pass on the OLD shard: takes the moving tenant's
  tasks out of the shard's cascade list (a dead task's cascade past its bound, carried on by the
  reaper: includes/shard.lua) into the migration's frozen set ('c|<id>'), so the old shard's
  reaper no longer changes the tenant's rows while they are copied, and the copy carries the
  cascade on to the new shard (migrateThaw.lua). Other tenants' entries stay, in order.

  Input:
    KEYS[1] the cascade list   KEYS[2] frozen (zset)
    ARGV[1] task row prefix    ARGV[2] tenant
  Output: the number of entries taken
]]
if redis.call('LLEN', KEYS[1]) == 0 then return 0 end
local mine, others = {}, {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local attrs = redis.call('HGET', ARGV[1] .. id, 'attrs')
  if attrs and string.match(attrs, '^[^\t]*\t[^\t]*\t([^\t]*)') == ARGV[2] then
    mine[#mine + 1] = id
  else
    others[#others + 1] = id
  end
end
if #mine == 0 then return 0 end
redis.call('DEL', KEYS[1])
-- unpack passes at most ~8000 values through the C stack: chunks.
for i = 1, #others, 4000 do
  redis.call('RPUSH', KEYS[1], unpack(others, i, math.min(#others, i + 3999)))
end
for _, id in ipairs(mine) do redis.call('ZADD', KEYS[2], 0, 'c|' .. id) end
return #mine
