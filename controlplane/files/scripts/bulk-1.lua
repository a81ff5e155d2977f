--[[
  Imports many files in one step, each with a size and an mtime and no data yet (sparse: it
  reads as zeros until written), creating missing directories as mkdir -p does. For loading a
  tree (benchmarks, migrations) without one round trip per file. Every entry is checked before
  the first write, so the batch is all or nothing.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] file mode, ARGV[11] chunk size, ARGV[12] mode of new directories
    ARGV[13] the request's record key, ARGV[14] the request hash, ARGV[15] the record's TTL in
    ms (includes/once.lua: a resend after a lost reply answers the first run's output, where
    it would find its own files and fail "exists")
    ARGV[16...] path, size, mtime for each file
  Permissions: as create and mkdir -p: x on every directory passed, w and x on each directory
    that gets a new entry (directories this batch makes are the caller's).
  Output: { 0, files created, directories created }, or { code, path, detail }
]]
--@include "includes/fs.lua"
--@include "includes/once.lua"

return run(function()
  local mode, cs, dirMode = tonumber(ARGV[10]), tonumber(ARGV[11]), bit.bor(tonumber(ARGV[12]), 448)
  local earlier = earlierRun(ARGV[13], ARGV[14], ARGV[16] or '/')
  if earlier then return earlier end
  local files = {}
  for i = 16, #ARGV, 3 do
    files[#files + 1] = { path = ARGV[i], parts = splitPath(ARGV[i]), size = tonumber(ARGV[i + 1]),
                          mtime = tonumber(ARGV[i + 2]) }
  end

  -- Checks. dirs[path] = the directory's node, or 'new' when this batch creates it.
  local dirs, planned = { ['/'] = loadRoot() }, {}
  local function probeDir(parts, n)
    local p = joinPath(parts, n)
    if dirs[p] ~= nil then return dirs[p] end
    if planned[p] then fail(ERR_NOTDIR, p) end
    local parent = probeDir(parts, n - 1)
    local state = 'new'
    if parent ~= 'new' then
      local at = joinPath(parts, n - 1)
      need(parent, PERM_X, at)
      local child = redis.call('HGET', direntKey(parent.ino), parts[n])
      if child then
        state = loadInode(child)
        if state.t ~= 'd' then fail(ERR_NOTDIR, p) end
      else
        need(parent, PERM_W + PERM_X, at)
      end
    end
    dirs[p] = state
    return state
  end
  for _, f in ipairs(files) do
    if #f.parts == 0 or planned[f.path] or dirs[f.path] then fail(ERR_EXIST, f.path) end
    local parent = probeDir(f.parts, #f.parts - 1)
    if parent ~= 'new' then
      need(parent, PERM_W + PERM_X, joinPath(f.parts, #f.parts - 1))
      if redis.call('HEXISTS', direntKey(parent.ino), f.parts[#f.parts]) == 1 then
        fail(ERR_EXIST, f.path)
      end
    end
    planned[f.path] = true
  end

  -- Writes, batched per key: every command inside a script is also appended to the AOF, so
  -- one HSET per inode plus one command per directory and index for the whole batch (not one
  -- per file each) is what keeps a bulk import fast with AOF on.
  local fresh = 0
  for _, state in pairs(dirs) do if state == 'new' then fresh = fresh + 1 end end
  local nextIno = redis.call('HINCRBY', KEYS[1], 'next_ino', fresh + #files) - fresh - #files
  local function takeIno()
    nextIno = nextIno + 1
    return tostring(nextIno)
  end
  local entries, parents = {}, {} -- parent ino -> { name, ino, ... }; parents in first-use order
  local function addEntry(parent, name, ino)
    local list = entries[parent.ino]
    if not list then
      list = {}
      entries[parent.ino] = list
      parents[#parents + 1] = parent.ino
    end
    list[#list + 1] = name
    list[#list + 1] = ino
  end
  local newDirs, paths, sizes, mtimes, mtimeDirs = {}, {}, {}, {}, {}
  local made = 0
  local function ensureDir(parts, n)
    local p = joinPath(parts, n)
    local d = dirs[p]
    if d ~= 'new' then return d end
    local parent = ensureDir(parts, n - 1)
    local ino = takeIno()
    redis.call('HSET', inodeKey(ino), 't', 'd', 'uid', CALLER_UID, 'gid', CALLER_GID, 'mode',
      dirMode, 'size', 0, 'bytes', 0, 'mtime', NOW, 'ctime', NOW, 'cs', 0, 'ver', 0)
    addEntry(parent, parts[n], ino)
    newDirs[#newDirs + 1] = 0
    newDirs[#newDirs + 1] = p
    d = { ino = ino, uid = CALLER_UID, t = 'd' }
    dirs[p] = d
    made = made + 1
    return d
  end
  local grow, order = {}, {}
  for _, f in ipairs(files) do
    local n = #f.parts
    local parent = ensureDir(f.parts, n - 1)
    local ino = takeIno()
    redis.call('HSET', inodeKey(ino), 't', 'f', 'uid', CALLER_UID, 'gid', CALLER_GID, 'mode', mode,
      'size', f.size, 'bytes', 0, 'mtime', f.mtime, 'ctime', NOW, 'cs', cs, 'ver', 0)
    addEntry(parent, f.parts[n], ino)
    paths[#paths + 1] = 0
    paths[#paths + 1] = f.path
    sizes[#sizes + 1] = f.size
    sizes[#sizes + 1] = f.path
    for i = 0, n - 1 do
      local p = joinPath(f.parts, i)
      local d = dirs[p]
      if not grow[p] then
        grow[p] = 0
        order[#order + 1] = p
        mtimes[p] = {}
      end
      grow[p] = grow[p] + f.size
      local m = mtimes[p]
      m[#m + 1] = f.mtime
      m[#m + 1] = f.path
      mtimeDirs[p] = d.ino
    end
  end
  -- Many members per command, in slices that stay within Lua's unpack limit.
  local function many(cmd, key, flat)
    for i = 1, #flat, 1000 do
      redis.call(cmd, key, unpack(flat, i, math.min(i + 999, #flat)))
    end
  end
  for _, ino in ipairs(parents) do
    many('HSET', direntKey(ino), entries[ino])
    redis.call('HSET', inodeKey(ino), 'mtime', NOW, 'ctime', NOW)
  end
  many('ZADD', dirBytesKey(CALLER_UID), newDirs)
  many('ZADD', IDX_PATH, paths)
  many('ZADD', IDX_SIZE, sizes)
  for _, p in ipairs(order) do
    many('ZADD', dirMtimeKey(mtimeDirs[p]), mtimes[p])
    if grow[p] ~= 0 then
      redis.call('HINCRBY', inodeKey(dirs[p].ino), 'bytes', grow[p])
      redis.call('ZINCRBY', dirBytesKey(dirs[p].uid), grow[p], p)
    end
  end
  return recordRun(ARGV[13], ARGV[14], ARGV[15], { OK, #files, made })
end)
