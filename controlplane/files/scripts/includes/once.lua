--[[
  Once-only writes (create, rename, mkdir, unlink, rmdir; after includes/fs.lua). A write keeps
  a record of its request, '<request hash> <output numbers after OK>', for a TTL under a key of
  the volume's family, in the step that makes the change: the same request run again (a client
  resending the script after a lost reply, or a caller retrying with its own id) answers the
  first run's output and changes nothing; another request under the id fails ERR_INVAL (rule
  same_request). Only a success is recorded: a refusal changed nothing, so a repeat of it
  checks again.
]]

-- The first run's output of this request, or nil; fails when the id is another request's.
local function earlierRun(key, hash, path)
  local done = redis.call('GET', key)
  if not done then return nil end
  local out, first = { OK }, true
  for word in string.gmatch(done, '%S+') do
    if first then
      if word ~= hash then fail(ERR_INVAL, path, 'same_request') end
      first = false
    else
      out[#out + 1] = tonumber(word)
    end
  end
  return out
end

-- Records a successful output (numbers after OK) and returns it.
local function recordRun(key, hash, ttlMs, out)
  redis.call('SET', key, hash .. ' ' .. table.concat(out, ' ', 2), 'PX', ttlMs)
  return out
end
