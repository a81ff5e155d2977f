--[[
  chmod and chown: changes an inode's mode, owner or group.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] path, ARGV[11] mode ('' = keep), ARGV[12] uid ('' = keep), ARGV[13] gid ('' = keep)
  Permissions (POSIX): x on every directory passed; only the owner or root changes anything
    (even to the same values: the ctime moves); the owner only by root; the group by root, or
    by the owner to a group the owner is in.
  Output: { 0 }, or { code, path, detail }
]]
--@include "includes/fs.lua"

return run(function()
  local path = ARGV[10]
  local mode, uid, gid = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
  local _, n = lookup(path)
  if not n then fail(ERR_NOENT, path) end
  local root, owner = CALLER_UID == 0, n.uid == CALLER_UID
  if not (root or owner) then fail(ERR_PERM, path, 'owner') end
  if uid and uid ~= n.uid and not root then fail(ERR_PERM, path, 'root') end
  if gid and gid ~= n.gid and not (root or CALLER_GIDS[gid]) then fail(ERR_PERM, path, 'group') end
  local set = { 'ctime', NOW }
  if mode then set[#set + 1] = 'mode'; set[#set + 1] = mode end
  if gid then set[#set + 1] = 'gid'; set[#set + 1] = gid end
  if uid and uid ~= n.uid then
    set[#set + 1] = 'uid'; set[#set + 1] = uid
    if n.t == 'd' then
      -- The directory's size now counts among its new owner's directories.
      redis.call('ZREM', dirBytesKey(n.uid), path)
      redis.call('ZADD', dirBytesKey(uid), n.bytes, path)
    end
  end
  redis.call('HSET', inodeKey(n.ino), unpack(set))
  return { OK }
end)
