--[[
  Live placement migration, on the NEW shard once every row of the moving tenant is copied:
  its staged tasks (frozen by the copy) get back the state they had and their index entry, so
  they run here from now on; a dead task's cascade still under way on the old shard ('c|<id>')
  goes on in this shard's cascade list (the reaper carries it on). A task no longer frozen (or
  gone) only leaves the staging. Safe to repeat (a cascade entry handed over twice finds its
  children done the second time).

  Input:
    KEYS[1] runnable  KEYS[2] delayed  KEYS[3] the tenant's staged tasks  KEYS[4] doorbell
    KEYS[5] the cascade list   KEYS[6] the shard's stats (runnable_in: tasks made runnable)
    ARGV[1] task row prefix
    ARGV[2] JSON list of task ids to thaw (staged ones)
  Output: tasks thawed
]]
local INDEX = { r = KEYS[1], d = KEYS[2] }
local STATE = { r = 'runnable', d = 'delayed' }
local thawed, ring, made = 0, false, 0
for _, id in ipairs(cjson.decode(ARGV[2])) do
  local entry = redis.call('HGET', KEYS[3], id)
  if entry == 'c' then
    redis.call('RPUSH', KEYS[5], string.sub(id, 3))
    redis.call('HDEL', KEYS[3], id)
  elseif entry then
    local index, score = string.match(entry, '^(%a) (%S+)$')
    local key = ARGV[1] .. id
    if INDEX[index] and redis.call('HGET', key, 'state') == 'moving' then
      redis.call('HSET', key, 'state', STATE[index])
      redis.call('ZADD', INDEX[index], score, id)
      if index == 'r' then
        ring = true
        made = made + 1
      end
      thawed = thawed + 1
    end
    redis.call('HDEL', KEYS[3], id)
  end
end
if made > 0 then redis.call('HINCRBY', KEYS[6], 'runnable_in', made) end
if ring and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], '1') end
return thawed
