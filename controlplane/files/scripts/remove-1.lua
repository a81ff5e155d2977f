--[[
  Removes a file (unlink) or an empty directory (rmdir), with its data, its index entries and
  its share of every directory size above it, in one step.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] path, ARGV[11] 'f' (unlink) or 'd' (rmdir)
    ARGV[12] the request's record key, ARGV[13] the request hash, ARGV[14] the record's TTL in
    ms (includes/once.lua: a repeat of the request answers the first run's output)
  Permissions: x on every directory passed, w and x on the parent.
  Output: { 0 }, or { code, path, detail }
]]
--@include "includes/fs.lua"
--@include "includes/once.lua"

return run(function()
  local path, kind = ARGV[10], ARGV[11]
  local earlier = earlierRun(ARGV[12], ARGV[13], path)
  if earlier then return earlier end
  local dirs, leaf, parts = lookup(path)
  if #parts == 0 then fail(ERR_INVAL, '/', 'root') end
  if not leaf then fail(ERR_NOENT, path) end
  local parent = dirs[#parts]
  need(parent, PERM_W + PERM_X, joinPath(parts, #parts - 1))
  if kind == 'f' and leaf.t == 'd' then fail(ERR_ISDIR, path) end
  if kind == 'd' and leaf.t ~= 'd' then fail(ERR_NOTDIR, path) end
  if leaf.t == 'd' and redis.call('HLEN', direntKey(leaf.ino)) > 0 then fail(ERR_NOTEMPTY, path) end
  redis.call('HDEL', direntKey(parent.ino), parts[#parts])
  touch(parent)
  redis.call('DEL', inodeKey(leaf.ino))
  if leaf.t == 'd' then
    redis.call('ZREM', dirBytesKey(leaf.uid), path)
    redis.call('DEL', dirMtimeKey(leaf.ino), direntKey(leaf.ino))
  else
    redis.call('UNLINK', dataKey(leaf.ino))
    unindexFile(path, dirs)
    addBytes(dirs, parts, -leaf.size)
  end
  return recordRun(ARGV[12], ARGV[13], ARGV[14], { OK })
end)
