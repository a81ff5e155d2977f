--[[
  What every file script shares: the key layout, the caller, inode loading, POSIX permission
  checks, path lookup, and the index and directory-size upkeep. Every file script includes it.

  Calling convention of every file script:
    KEYS[1]  the volume row (a hash: next_ino); it routes the call to the volume's cluster slot.
             Every other key the script touches has the same hash tag, so it is in that slot.
    ARGV[1]  inode key prefix      (inode <ino>:    <prefix>:<ino>, a hash)
    ARGV[2]  dirent key prefix     (directory <ino>: <prefix>:<ino>, a hash name -> child ino)
    ARGV[3]  data key prefix       (file <ino>:     <prefix>:<ino>, a hash <idx> -> chunk bytes,
                                    v<idx> -> the file version that last wrote the chunk)
    ARGV[4]  dir-bytes key prefix  (owner <uid>:    <prefix>:<uid>, a sorted set dir path -> bytes)
    ARGV[5]  path index   (sorted set, score 0, member = file path: prefix ranges by ZRANGEBYLEX)
    ARGV[6]  size index   (sorted set, score = size in bytes, member = file path)
    ARGV[7]  dir-mtime key prefix  (directory <ino>: <prefix>:<ino>, a sorted set: path -> mtime
                                    of every file in the directory's subtree, kept by every write)
    ARGV[8]  the caller: "<uid>:<primary gid>,<gid>,..."
    ARGV[9]  now, in ms (time is injected by the caller)
    ARGV[10...] the script's own arguments
  The prefixes come from controlplane/files/keys.ts; appending ':<id>' here builds exactly what
  Keys.key(family, table, id) builds there (a test checks it).

  Rule every script keeps: all checks come before the first write, because Redis does not roll
  back a script that stops halfway. fail() raises; run() turns it into the { code, path,
  detail } reply.
]]
--@include "includes/codes.lua"
--@include "includes/fscodes.lua"

local L_INODE, L_DIRENT, L_DATA, L_DIRBYTES = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local IDX_PATH, IDX_SIZE, L_DIRMTIME = ARGV[5], ARGV[6], ARGV[7]
local NOW = tonumber(ARGV[9])
local ROOT_INO = '1'

local function inodeKey(ino) return L_INODE .. ':' .. ino end
local function direntKey(ino) return L_DIRENT .. ':' .. ino end
local function dataKey(ino) return L_DATA .. ':' .. ino end
local function dirBytesKey(uid) return L_DIRBYTES .. ':' .. uid end
local function dirMtimeKey(ino) return L_DIRMTIME .. ':' .. ino end

local CALLER_UID, CALLER_GID
local CALLER_GIDS = {}
do
  local uid, gids = string.match(ARGV[8], '^(%d+):([%d,]*)$')
  CALLER_UID = tonumber(uid)
  for g in string.gmatch(gids, '%d+') do
    CALLER_GID = CALLER_GID or tonumber(g)
    CALLER_GIDS[tonumber(g)] = true
  end
  CALLER_GID = CALLER_GID or CALLER_UID
end

local function fail(code, path, detail)
  error({ fscode = code, path = path or '', detail = detail or '' })
end

-- Runs a script body; a fail() becomes the coded reply, any other error is re-raised.
local function run(main)
  local ok, res = pcall(main)
  if ok then return res end
  if type(res) == 'table' and res.fscode then return { res.fscode, res.path, res.detail } end
  error(res)
end

local function loadInode(ino)
  local f = redis.call('HMGET', inodeKey(ino), 't', 'uid', 'gid', 'mode', 'size', 'bytes',
    'mtime', 'ctime', 'cs', 'ver')
  if not f[1] then return nil end
  return {
    ino = ino, t = f[1], uid = tonumber(f[2]), gid = tonumber(f[3]), mode = tonumber(f[4]),
    size = tonumber(f[5]) or 0, bytes = tonumber(f[6]) or 0, mtime = tonumber(f[7]) or 0,
    ctime = tonumber(f[8]) or 0, cs = tonumber(f[9]) or 0, ver = tonumber(f[10]) or 0,
  }
end

local PERM_R, PERM_W, PERM_X = 4, 2, 1
local PERM_NAMES = { [1] = 'x', [2] = 'w', [3] = 'wx', [4] = 'r', [5] = 'rx', [6] = 'rw', [7] = 'rwx' }

-- POSIX: the owner's bits if the caller owns the inode, else the group's if the caller is in
-- its group, else the others'. uid 0 passes every check.
local function permits(node, want)
  if CALLER_UID == 0 then return true end
  local shift = 0
  if node.uid == CALLER_UID then shift = 6 elseif CALLER_GIDS[node.gid] then shift = 3 end
  return bit.band(bit.rshift(node.mode, shift), want) == want
end

local function need(node, want, path)
  if not permits(node, want) then
    -- Name the bits that are missing, not the whole request.
    local missing = 0
    for _, b in ipairs({ PERM_R, PERM_W, PERM_X }) do
      if bit.band(want, b) ~= 0 and not permits(node, b) then missing = missing + b end
    end
    fail(ERR_PERM, path, PERM_NAMES[missing])
  end
end

local function splitPath(path)
  local parts = {}
  for p in string.gmatch(path, '[^/]+') do parts[#parts + 1] = p end
  return parts
end

-- The path of the first n components.
local function joinPath(parts, n)
  if n == 0 then return '/' end
  return '/' .. table.concat(parts, '/', 1, n)
end

-- A directory's path with a '/' after it: what every path below it starts with.
local function dirPrefix(path)
  if path == '/' then return '/' end
  return path .. '/'
end

local function loadRoot()
  local root = loadInode(ROOT_INO)
  if not root then fail(ERR_NOVOL, '/', 'volume') end
  return root
end

--[[
  Walks a path from the root, checking search (x) permission on every directory it passes.
  Returns dirs (dirs[i] is the directory holding component i, so dirs[#parts] is the parent),
  the leaf's node (nil when only the leaf is missing) and the components. For '/', dirs is
  empty and the leaf is the root.
]]
local function lookup(path)
  local parts = splitPath(path)
  local node = loadRoot()
  local dirs = {}
  for i = 1, #parts do
    local here = joinPath(parts, i - 1)
    if node.t ~= 'd' then fail(ERR_NOTDIR, here) end
    need(node, PERM_X, here)
    dirs[i] = node
    local child = redis.call('HGET', direntKey(node.ino), parts[i])
    if not child then
      if i == #parts then return dirs, nil, parts end
      fail(ERR_NOENT, joinPath(parts, i))
    end
    node = loadInode(child)
  end
  return dirs, node, parts
end

-- Adds delta bytes to the subtree size of dirs[1..#dirs] (their paths are parts' prefixes),
-- in each directory's inode and in its owner's dir-bytes index.
local function addBytes(dirs, parts, delta)
  if delta == 0 then return end
  for i = 1, #dirs do
    local d = dirs[i]
    redis.call('HINCRBY', inodeKey(d.ino), 'bytes', delta)
    redis.call('ZINCRBY', dirBytesKey(d.uid), delta, joinPath(parts, i - 1))
  end
end

-- A file's entries in the global path and size indexes and in the mtime index of every
-- directory above it (dirs: their nodes, root first).
local function indexFile(path, size, mtime, dirs)
  redis.call('ZADD', IDX_PATH, 0, path)
  redis.call('ZADD', IDX_SIZE, size, path)
  for i = 1, #dirs do redis.call('ZADD', dirMtimeKey(dirs[i].ino), mtime, path) end
end

local function unindexFile(path, dirs)
  redis.call('ZREM', IDX_PATH, path)
  redis.call('ZREM', IDX_SIZE, path)
  for i = 1, #dirs do redis.call('ZREM', dirMtimeKey(dirs[i].ino), path) end
end

-- A new inode owned by the caller; 'd' inodes also join the owner's dir-bytes index.
local function newInode(t, mode, cs, path, mtime)
  local ino = tostring(redis.call('HINCRBY', KEYS[1], 'next_ino', 1))
  redis.call('HSET', inodeKey(ino), 't', t, 'uid', CALLER_UID, 'gid', CALLER_GID, 'mode', mode,
    'size', 0, 'bytes', 0, 'mtime', mtime or NOW, 'ctime', NOW, 'cs', cs, 'ver', 0)
  if t == 'd' then redis.call('ZADD', dirBytesKey(CALLER_UID), 0, path) end
  return ino
end

local function touch(node)
  redis.call('HSET', inodeKey(node.ino), 'mtime', NOW, 'ctime', NOW)
end

-- Links a new entry into a directory and stamps the directory's times.
local function link(parent, name, ino)
  redis.call('HSET', direntKey(parent.ino), name, ino)
  touch(parent)
end
