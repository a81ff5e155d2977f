--[[
  Sets a file's size: shrinking drops the chunks past the end and cuts the last one (so a
  later write past the end finds zeros, not old bytes); growing leaves a hole that reads as
  zeros.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] path, ARGV[11] new size in bytes
  Permissions: x on every directory passed, w on the file.
  Output: { 0, size, version }, or { code, path, detail }
]]
--@include "includes/fs.lua"

return run(function()
  local path, size = ARGV[10], tonumber(ARGV[11])
  local dirs, leaf, parts = lookup(path)
  if not leaf then fail(ERR_NOENT, path) end
  if leaf.t == 'd' then fail(ERR_ISDIR, path) end
  need(leaf, PERM_W, path)
  local cs, ver, dk = leaf.cs, leaf.ver + 1, dataKey(leaf.ino)
  if size < leaf.size then
    local keep = math.ceil(size / cs)            -- chunks 0..keep-1 stay
    local had = math.ceil(leaf.size / cs)
    -- Drop chunks keep..had-1: by index when that range is short, else by listing the chunks
    -- that exist (a sparse file may have far fewer than its size suggests).
    if had - keep <= redis.call('HLEN', dk) then
      for idx = keep, had - 1 do redis.call('HDEL', dk, idx, 'v' .. idx) end
    else
      for _, f in ipairs(redis.call('HKEYS', dk)) do
        local idx = tonumber(string.match(f, '^v?(%d+)$'))
        if idx and idx >= keep then redis.call('HDEL', dk, f) end
      end
    end
    local tail = size - (keep - 1) * cs          -- bytes of the last kept chunk
    if keep > 0 and tail < cs then
      local last = redis.call('HGET', dk, keep - 1)
      if last and #last > tail then
        redis.call('HSET', dk, keep - 1, string.sub(last, 1, tail), 'v' .. (keep - 1), ver)
      end
    end
  end
  redis.call('HSET', inodeKey(leaf.ino), 'size', size, 'mtime', NOW, 'ctime', NOW, 'ver', ver)
  indexFile(path, size, NOW, dirs)
  addBytes(dirs, parts, size - leaf.size)
  return { OK, size, ver }
end)
