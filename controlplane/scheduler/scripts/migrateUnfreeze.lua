--[[
  Live placement migration, on the OLD shard when a move is refused: gives a bounded part of the
  tenant's frozen tasks back their state and index entry, and its cascade entries back to the
  cascade list, as they were before the freeze (the tenant stays here). Safe to repeat.

  Input:
    KEYS[1] runnable  KEYS[2] delayed  KEYS[3] frozen (zset)  KEYS[4] doorbell
    KEYS[5] the cascade list   KEYS[6] the shard's stats (runnable_in: tasks made runnable)
    ARGV[1] task row prefix   ARGV[2] most entries handled in this call
  Output: entries left in the frozen set
]]
local INDEX = { r = KEYS[1], d = KEYS[2] }
local STATE = { r = 'runnable', d = 'delayed' }
local ring, made = false, 0
local entries = redis.call('ZRANGE', KEYS[3], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local member, score = entries[i], entries[i + 1]
  local tag, id = string.match(member, '^(%a)|(.*)$')
  if tag == 'c' then
    redis.call('RPUSH', KEYS[5], id)
  elseif INDEX[tag] and redis.call('HGET', ARGV[1] .. id, 'state') == 'moving' then
    redis.call('HSET', ARGV[1] .. id, 'state', STATE[tag])
    redis.call('HINCRBY', ARGV[1] .. id, '_v', 1)
    redis.call('ZADD', INDEX[tag], score, id)
    if tag == 'r' then
      ring = true
      made = made + 1
    end
  end
  redis.call('ZREM', KEYS[3], member)
end
if made > 0 then redis.call('HINCRBY', KEYS[6], 'runnable_in', made) end
if ring and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], '1') end
return redis.call('ZCARD', KEYS[3])
