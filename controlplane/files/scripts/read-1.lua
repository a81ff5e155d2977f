--[[
  Reads the chunks that cover a byte range of a file, skipping the ones the caller's cache
  already holds at their current version: the one round trip that both checks permission and
  keeps every instance's read cache coherent.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] path, ARGV[11] offset, ARGV[12] length (-1: to the end of the file)
    ARGV[13] the inode the caller's cache knows this path by ('' when none)
    ARGV[14] the versions the caller holds for the range's chunks, first chunk first,
             comma-separated (0 = not held); only used when ARGV[13] is the file's inode
    ARGV[15] '1': the caller wants the whole rest of the file, and ARGV[12] is its bound (a
             longer rest fails with ERR_LIMIT before any chunk is sent)
  Permissions: x on every directory passed, r on the file.
  Output: { 0, ino, size, chunk size, version, mtime, first chunk index,
            then per chunk: its version (0 = a hole: zeros), its bytes or nil (held or hole) }
          or { code, path, detail }
]]
--@include "includes/fs.lua"

return run(function()
  local path, off, len = ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])
  local _, leaf = lookup(path)
  if not leaf then fail(ERR_NOENT, path) end
  if leaf.t == 'd' then fail(ERR_ISDIR, path) end
  need(leaf, PERM_R, path)
  local size, cs = leaf.size, leaf.cs
  if off > size then off = size end
  if ARGV[15] == '1' and size - off > len then fail(ERR_LIMIT, path, 'io_bytes_max:' .. len) end
  local stop = size
  if len >= 0 then stop = math.min(size, off + len) end
  if stop <= off then
    return { OK, tonumber(leaf.ino), size, cs, leaf.ver, leaf.mtime, 0 }
  end
  local first, last = math.floor(off / cs), math.floor((stop - 1) / cs)
  local out = { OK, tonumber(leaf.ino), size, cs, leaf.ver, leaf.mtime, first }
  local held = {}
  if ARGV[13] == leaf.ino then
    for v in string.gmatch(ARGV[14], '%d+') do held[#held + 1] = tonumber(v) end
  end
  local fields = {}
  for idx = first, last do fields[#fields + 1] = 'v' .. idx end
  local dk = dataKey(leaf.ino)
  local vers = redis.call('HMGET', dk, unpack(fields))
  for i = 1, #vers do
    local v = tonumber(vers[i]) or 0
    out[#out + 1] = v
    if v == 0 or held[i] == v then
      out[#out + 1] = false
    else
      out[#out + 1] = redis.call('HGET', dk, first + i - 1)
    end
  end
  return out
end)
