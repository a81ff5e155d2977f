--[[
  Imports many files in one step, each with a size and an mtime and no data yet (sparse: it
  reads as zeros until written), creating missing directories as mkdir -p does. For loading a
  tree (benchmarks, migrations) without one round trip per file. Every entry is checked before
  the first write, so the batch is all or nothing.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] file mode, ARGV[11] chunk size, ARGV[12] mode of new directories
    ARGV[13...] path, size, mtime for each file
  Permissions: as create and mkdir -p: x on every directory passed, w and x on each directory
    that gets a new entry (directories this batch makes are the caller's).
  Output: { 0, files created, directories created }, or { code, path, detail }
]]
--@include "includes/fs.lua"

return run(function()
  local mode, cs, dirMode = tonumber(ARGV[10]), tonumber(ARGV[11]), bit.bor(tonumber(ARGV[12]), 448)
  local files = {}
  for i = 13, #ARGV, 3 do
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

  -- Writes. Directory sizes are summed per directory and applied once at the end.
  local made = 0
  local function ensureDir(parts, n)
    local p = joinPath(parts, n)
    local d = dirs[p]
    if d ~= 'new' then return d end
    local parent = ensureDir(parts, n - 1)
    local ino = newInode('d', dirMode, 0, p)
    link(parent, parts[n], ino)
    d = { ino = ino, uid = CALLER_UID, t = 'd' }
    dirs[p] = d
    made = made + 1
    return d
  end
  local grow, order = {}, {}
  for _, f in ipairs(files) do
    local n = #f.parts
    local parent = ensureDir(f.parts, n - 1)
    local ino = newInode('f', mode, cs, f.path, f.mtime)
    redis.call('HSET', inodeKey(ino), 'size', f.size)
    link(parent, f.parts[n], ino)
    local chain = {}
    for i = 0, n - 1 do chain[i + 1] = dirs[joinPath(f.parts, i)] end
    indexFile(f.path, f.size, f.mtime, chain)
    for i = 0, n - 1 do
      local p = joinPath(f.parts, i)
      if not grow[p] then grow[p] = 0; order[#order + 1] = p end
      grow[p] = grow[p] + f.size
    end
  end
  for _, p in ipairs(order) do
    if grow[p] ~= 0 then
      redis.call('HINCRBY', inodeKey(dirs[p].ino), 'bytes', grow[p])
      redis.call('ZINCRBY', dirBytesKey(dirs[p].uid), grow[p], p)
    end
  end
  return { OK, #files, made }
end)
