--[[
  Creates a directory; with parents, also every missing directory above it (mkdir -p), and
  an existing directory at the path is no error.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] path (normalised), ARGV[11] mode, ARGV[12] '1' = parents
    ARGV[13] the request's record key, ARGV[14] the request hash, ARGV[15] the record's TTL in
    ms (includes/once.lua: a repeat of the request answers the first run's output)
  Permissions: x on every directory passed; w and x on the directory that gets the first new
    entry (directories made by -p are the caller's, with u+wx, as POSIX mkdir -p does).
  Output: { 0, ino of the directory, number created }, or { code, path, detail }
]]
--@include "includes/fs.lua"
--@include "includes/once.lua"

return run(function()
  local path, mode, parents = ARGV[10], tonumber(ARGV[11]), ARGV[12] == '1'
  local earlier = earlierRun(ARGV[13], ARGV[14], path)
  if earlier then return earlier end
  local function done(out) return recordRun(ARGV[13], ARGV[14], ARGV[15], out) end
  local parts = splitPath(path)
  if #parts == 0 then
    if parents then return done({ OK, tonumber(ROOT_INO), 0 }) end
    fail(ERR_EXIST, '/')
  end
  -- Checks: walk the existing part of the path.
  local node = loadRoot()
  local i = 1
  while i <= #parts do
    local here = joinPath(parts, i - 1)
    if node.t ~= 'd' then fail(ERR_NOTDIR, here) end
    need(node, PERM_X, here)
    local child = redis.call('HGET', direntKey(node.ino), parts[i])
    if not child then break end
    node = loadInode(child)
    i = i + 1
  end
  if i > #parts then
    if node.t ~= 'd' then fail(ERR_EXIST, path) end
    if parents then return done({ OK, tonumber(node.ino), 0 }) end
    fail(ERR_EXIST, path)
  end
  if i < #parts and not parents then fail(ERR_NOENT, joinPath(parts, i)) end
  need(node, PERM_W + PERM_X, joinPath(parts, i - 1))
  -- Writes: create components i..#parts.
  local created = 0
  while i <= #parts do
    local m = mode
    if i < #parts then m = bit.bor(mode, 448) end -- u+rwx on intermediate directories
    local ino = newInode('d', m, 0, joinPath(parts, i))
    link(node, parts[i], ino)
    node = { ino = ino }
    created = created + 1
    i = i + 1
  end
  return done({ OK, tonumber(node.ino), created })
end)
