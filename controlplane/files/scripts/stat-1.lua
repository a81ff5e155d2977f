--[[
  An inode's attributes by path.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua; ARGV[10] path
  Permissions: x on every directory passed (none on the entry itself, as POSIX stat).
  Output: { 0, ino, type ('f' | 'd'), uid, gid, mode, size, subtree bytes, mtime, ctime,
            chunk size, version, entries (directories; 0 for files) }, or { code, path, detail }
]]
--@include "includes/fs.lua"

return run(function()
  local path = ARGV[10]
  local _, n = lookup(path)
  if not n then fail(ERR_NOENT, path) end
  local entries = 0
  if n.t == 'd' then entries = redis.call('HLEN', direntKey(n.ino)) end
  return { OK, tonumber(n.ino), n.t, n.uid, n.gid, n.mode, n.size, n.bytes, n.mtime, n.ctime,
    n.cs, n.ver, entries }
end)
