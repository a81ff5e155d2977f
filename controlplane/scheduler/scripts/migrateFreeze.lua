--[[
  Live placement migration, step 1 on the OLD shard: takes a moving tenant's runnable and
  delayed tasks out of play (out of their index, state 'moving'), so no dispatcher, reaper or
  claim of the old shard starts them again; their index and score are kept in the migration's
  frozen set. A task that is no longer in the index (claimed meanwhile) or of another tenant
  is left alone.

  Input:
    KEYS[1] runnable   KEYS[2] delayed   KEYS[3] frozen (zset '<r|d>|<id>' -> score)
    ARGV[1] task row prefix   ARGV[2] tenant   ARGV[3..] task ids
  Output: the number of tasks frozen
]]
local frozen = 0
local prefix, tenant = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = prefix .. id
  local attrs = redis.call('HGET', key, 'attrs')
  if attrs and string.match(attrs, '^[^\t]*\t[^\t]*\t([^\t]*)') == tenant then
    for k, tag in ipairs({ 'r', 'd' }) do
      local score = redis.call('ZSCORE', KEYS[k], id)
      if score then
        redis.call('ZREM', KEYS[k], id)
        redis.call('ZADD', KEYS[3], score, tag .. '|' .. id)
        redis.call('HSET', key, 'state', 'moving')
        redis.call('HINCRBY', key, '_v', 1)
        frozen = frozen + 1
      end
    end
  end
end
return frozen
