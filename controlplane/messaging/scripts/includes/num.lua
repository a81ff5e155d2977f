--[[
  Numbers parsed once per call. tonumber(s) costs two strtod calls (Lua 5.1 checks, then
  converts), more than most Redis commands, and a batch repeats the same few strings (write
  counts, key numbers, argument counts, increments) on every message. NUM[s] is tonumber(s);
  INT[s] is the integer s when INCRBY would take it and it is below 1e15 (sums of such stay
  exact as doubles), else false.
]]
local NUM = setmetatable({}, { __index = function(t, s)
  if s == nil then return nil end
  local v = tonumber(s)
  if v ~= nil then t[s] = v end
  return v
end })
local INT = setmetatable({}, { __index = function(t, s)
  local v = (s == '0' or string.match(s, '^%-?[1-9]%d*$')) and #s <= 15 and tonumber(s) or false
  t[s] = v
  return v
end })
