--[[
  Writes bytes into a file at an offset: the chunks the range touches are rewritten (a chunk
  only partly covered keeps its other bytes; a gap before the offset reads as zeros), the size
  grows to cover the range, and the file version, mtime, indexes and the subtree sizes of every
  directory above move in the same step.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] path, ARGV[11] offset in bytes, ARGV[12] the bytes
  Permissions: x on every directory passed, w on the file.
  Output: { 0, new size, new version, ino, chunk size }, or { code, path, detail }
]]
--@include "includes/fs.lua"

return run(function()
  local path, off, data = ARGV[10], tonumber(ARGV[11]), ARGV[12]
  local dirs, leaf, parts = lookup(path)
  if not leaf then fail(ERR_NOENT, path) end
  if leaf.t == 'd' then fail(ERR_ISDIR, path) end
  need(leaf, PERM_W, path)
  local len = #data
  if len == 0 then return { OK, leaf.size, leaf.ver, tonumber(leaf.ino), leaf.cs } end
  local cs, ver, dk = leaf.cs, leaf.ver + 1, dataKey(leaf.ino)
  local stop = off + len
  for idx = math.floor(off / cs), math.floor((stop - 1) / cs) do
    local base = idx * cs
    local a = math.max(off, base)
    local b = math.min(stop, base + cs)
    local piece = string.sub(data, a - off + 1, b - off)
    local at = a - base
    local chunk = piece
    if not (at == 0 and #piece == cs) then
      local old = redis.call('HGET', dk, idx) or ''
      if #old < at then old = old .. string.rep('\0', at - #old) end
      chunk = string.sub(old, 1, at) .. piece .. string.sub(old, at + #piece + 1)
    end
    redis.call('HSET', dk, idx, chunk, 'v' .. idx, ver)
  end
  local size = math.max(leaf.size, stop)
  redis.call('HSET', inodeKey(leaf.ino), 'size', size, 'mtime', NOW, 'ctime', NOW, 'ver', ver)
  indexFile(path, size, NOW, dirs)
  addBytes(dirs, parts, size - leaf.size)
  return { OK, size, ver, tonumber(leaf.ino), cs }
end)
