--[[
  Creates a volume's root directory (inode 1) unless it exists. Idempotent.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua (the caller is ignored)
    ARGV[10] root owner uid, ARGV[11] root group gid, ARGV[12] root mode
  Output: { 0, 1 } created, { 0, 0 } it was there
]]
--@include "includes/fs.lua"

return run(function()
  if redis.call('EXISTS', inodeKey(ROOT_INO)) == 1 then return { OK, 0 } end
  local uid = tonumber(ARGV[10])
  redis.call('HSETNX', KEYS[1], 'next_ino', 1)
  redis.call('HSET', inodeKey(ROOT_INO), 't', 'd', 'uid', uid, 'gid', tonumber(ARGV[11]),
    'mode', tonumber(ARGV[12]), 'size', 0, 'bytes', 0, 'mtime', NOW, 'ctime', NOW, 'cs', 0, 'ver', 0)
  redis.call('ZADD', dirBytesKey(uid), 0, '/')
  return { OK, 1 }
end)
