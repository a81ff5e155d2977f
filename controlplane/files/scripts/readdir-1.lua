--[[
  One page of a directory's entries (HSCAN order), with each entry's inode and type.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] path, ARGV[11] cursor ('0' to start), ARGV[12] page size hint (HSCAN COUNT)
  Permissions: x on every directory passed, r on the directory.
  Output: { 0, next cursor ('0' = done), name, ino, type, name, ino, type, ... },
          or { code, path, detail }
]]
--@include "includes/fs.lua"

return run(function()
  local path = ARGV[10]
  local _, n = lookup(path)
  if not n then fail(ERR_NOENT, path) end
  if n.t ~= 'd' then fail(ERR_NOTDIR, path) end
  need(n, PERM_R, path)
  local page = redis.call('HSCAN', direntKey(n.ino), ARGV[11], 'COUNT', tonumber(ARGV[12]))
  local out = { OK, page[1] }
  local flat = page[2]
  for i = 1, #flat, 2 do
    out[#out + 1] = flat[i]
    out[#out + 1] = tonumber(flat[i + 1])
    out[#out + 1] = redis.call('HGET', inodeKey(flat[i + 1]), 't')
  end
  return out
end)
