--[[
  Creates an empty regular file (exclusive: an existing entry at the path is an error).

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] path, ARGV[11] mode, ARGV[12] chunk size in bytes (the files.chunk_bytes knob
    when the file is created; kept for the file's life)
    ARGV[13] the request's record key, ARGV[14] the request hash, ARGV[15] the record's TTL in
    ms (includes/once.lua: a repeat of the request answers the first run's output)
  Permissions: x on every directory passed, w and x on the parent.
  Output: { 0, ino, chunk size }, or { code, path, detail }
]]
--@include "includes/fs.lua"
--@include "includes/once.lua"

return run(function()
  local path, mode, cs = ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])
  -- First: a repeat must not be checked against the file its first run made.
  local earlier = earlierRun(ARGV[13], ARGV[14], path)
  if earlier then return earlier end
  local dirs, leaf, parts = lookup(path)
  if #parts == 0 or leaf then fail(ERR_EXIST, path) end
  local parent = dirs[#parts]
  need(parent, PERM_W + PERM_X, joinPath(parts, #parts - 1))
  local ino = newInode('f', mode, cs, path)
  link(parent, parts[#parts], ino)
  indexFile(path, 0, NOW, dirs)
  return recordRun(ARGV[13], ARGV[14], ARGV[15], { OK, tonumber(ino), cs })
end)
