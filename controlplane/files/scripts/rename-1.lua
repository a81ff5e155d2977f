--[[
  Renames an entry in one step, replacing an existing target as POSIX rename(2) does: a file
  replaces a file, a directory replaces an empty directory. A directory cannot move into its
  own subtree. Moving a directory re-keys the path indexes of everything below it (the indexes
  are keyed by full path), so the subtree size is bounded, and checked before any write.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] from, ARGV[11] to, ARGV[12] the most entries a moved directory may hold (subtree)
    ARGV[13] the most levels a path may have, ARGV[14] the most characters (UTF-16 units, as
    the service counts them): no entry of a moved directory may end up past either
    ARGV[15] the request's record key, ARGV[16] the request hash, ARGV[17] the record's TTL in
    ms (includes/once.lua: a repeat of the request answers the first run's output)
  Permissions: x on every directory passed on both paths, w and x on both parents.
  Output: { 0, entries moved (the entry and everything below it) }, or { code, path, detail }
]]
--@include "includes/fs.lua"
--@include "includes/once.lua"

-- Every entry below a directory, breadth first: { node, path } each. Fails past maxEntries.
local function subtree(dir, path, maxEntries)
  local out, queue, head = {}, { { node = dir, path = path } }, 1
  while head <= #queue do
    local d = queue[head]
    head = head + 1
    local dk = direntKey(d.node.ino)
    if #out + redis.call('HLEN', dk) > maxEntries then
      fail(ERR_LIMIT, path, 'subtree_entries:' .. maxEntries)
    end
    local flat = redis.call('HGETALL', dk)
    for i = 1, #flat, 2 do
      local e = { node = loadInode(flat[i + 1]), path = dirPrefix(d.path) .. flat[i] }
      out[#out + 1] = e
      if e.node.t == 'd' then queue[#queue + 1] = e end
    end
  end
  return out
end

-- A path's length as the service measures it (UTF-16 units): bytes, less UTF-8 continuation
-- bytes, plus one for each 4-byte sequence (a surrogate pair).
local function utf16Length(s)
  local _, cont = string.gsub(s, '[\128-\191]', '')
  local _, quad = string.gsub(s, '[\240-\247]', '')
  return #s - cont + quad
end

local function rekeyDir(node, old, new, bytes)
  redis.call('ZREM', dirBytesKey(node.uid), old)
  redis.call('ZADD', dirBytesKey(node.uid), bytes, new)
end

-- Rewrites the members of a directory's mtime index from the old path prefix to the new one.
local function rekeyMtimes(dir, from, to)
  local key = dirMtimeKey(dir.ino)
  local flat = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  if #flat == 0 then return end
  redis.call('DEL', key)
  local args = {}
  for i = 1, #flat, 2 do
    args[#args + 1] = flat[i + 1]
    args[#args + 1] = to .. string.sub(flat[i], #from + 1)
    if #args >= 1000 or i + 2 > #flat then
      redis.call('ZADD', key, unpack(args))
      args = {}
    end
  end
end

return run(function()
  local from, to, maxEntries = ARGV[10], ARGV[11], tonumber(ARGV[12])
  local depthMax, charsMax = tonumber(ARGV[13]), tonumber(ARGV[14])
  local reqKey, reqHash, reqTtl = ARGV[15], ARGV[16], ARGV[17]
  -- First: a repeat must not be checked against what its first run moved.
  local earlier = earlierRun(reqKey, reqHash, from)
  if earlier then return earlier end
  local fdirs, src, fparts = lookup(from)
  if #fparts == 0 then fail(ERR_INVAL, '/', 'root') end
  if not src then fail(ERR_NOENT, from) end
  local fparent = fdirs[#fparts]
  need(fparent, PERM_W + PERM_X, joinPath(fparts, #fparts - 1))
  if src.t == 'd' and string.sub(to, 1, #from + 1) == from .. '/' then
    fail(ERR_INVAL, to, 'subtree')
  end
  local tdirs, dst, tparts = lookup(to)
  if #tparts == 0 then fail(ERR_INVAL, '/', 'root') end
  local tparent = tdirs[#tparts]
  need(tparent, PERM_W + PERM_X, joinPath(tparts, #tparts - 1))
  -- A directory moved to another parent also needs `w` on itself (its '..' changes), as POSIX
  -- and Linux ask: without it, anyone with w on both parents moved another's 0555 directory.
  if src.t == 'd' and tparent.ino ~= fparent.ino then need(src, PERM_W, from) end
  if from == to then return recordRun(reqKey, reqHash, reqTtl, { OK, 0 }) end
  if dst then
    if src.t ~= 'd' and dst.t == 'd' then fail(ERR_ISDIR, to) end
    if src.t == 'd' and dst.t ~= 'd' then fail(ERR_NOTDIR, to) end
    if dst.t == 'd' and redis.call('HLEN', direntKey(dst.ino)) > 0 then fail(ERR_NOTEMPTY, to) end
  end
  local below = {}
  if src.t == 'd' then below = subtree(src, from, maxEntries) end
  -- Every path below must stay within the limits every other call enforces, or its files
  -- could be reached by no call (only found).
  for _, e in ipairs(below) do
    local path = to .. string.sub(e.path, #from + 1)
    local _, depth = string.gsub(path, '/', '')
    if depth > depthMax then fail(ERR_LIMIT, path, 'max_depth:' .. depthMax) end
    if utf16Length(path) > charsMax then fail(ERR_LIMIT, path, 'max_length:' .. charsMax) end
  end

  -- Writes. First the replaced target, then the entry itself, then sizes, then indexes.
  if dst then
    redis.call('DEL', inodeKey(dst.ino), direntKey(dst.ino), dirMtimeKey(dst.ino))
    if dst.t == 'd' then
      redis.call('ZREM', dirBytesKey(dst.uid), to)
    else
      redis.call('UNLINK', dataKey(dst.ino))
      unindexFile(to, tdirs)
      addBytes(tdirs, tparts, -dst.size)
    end
  end
  redis.call('HDEL', direntKey(fparent.ino), fparts[#fparts])
  redis.call('HSET', direntKey(tparent.ino), tparts[#tparts], src.ino)
  touch(fparent)
  touch(tparent)
  redis.call('HSET', inodeKey(src.ino), 'ctime', NOW)
  local moved = src.size
  if src.t == 'd' then moved = src.bytes end
  addBytes(fdirs, fparts, -moved)
  addBytes(tdirs, tparts, moved)
  if src.t ~= 'd' then
    unindexFile(from, fdirs)
    indexFile(to, src.size, src.mtime, tdirs)
    return recordRun(reqKey, reqHash, reqTtl, { OK, 1 })
  end
  -- Every file below the moved directory, from its own mtime index: a new path in the global
  -- indexes, out of the old ancestors' mtime indexes and into the new ones'.
  local files = redis.call('ZRANGE', dirMtimeKey(src.ino), 0, -1, 'WITHSCORES')
  for i = 1, #files, 2 do
    local old, mtime = files[i], files[i + 1]
    local new = to .. string.sub(old, #from + 1)
    local size = redis.call('ZSCORE', IDX_SIZE, old)
    unindexFile(old, fdirs)
    indexFile(new, size, mtime, tdirs)
  end
  -- The moved directories keep their inodes, so their own mtime indexes keep their keys; only
  -- the paths inside them, and their entries in the owners' dir-bytes indexes, change.
  rekeyDir(src, from, to, src.bytes)
  rekeyMtimes(src, from, to)
  for _, e in ipairs(below) do
    if e.node.t == 'd' then
      rekeyDir(e.node, e.path, to .. string.sub(e.path, #from + 1), e.node.bytes)
      rekeyMtimes(e.node, from, to)
    end
  end
  return recordRun(reqKey, reqHash, reqTtl, { OK, #below + 1 })
end)
