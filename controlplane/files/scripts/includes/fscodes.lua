--[[
  Failure codes of the file scripts, returned as { code, path, detail }. They are mapped to
  typed errors by ONE function, fileErrorFromReply in controlplane/files/errors.ts; keep the
  two lists in step. OK is the store's 0 (includes/codes.lua).
]]
local ERR_NOENT = -101    -- path: the first component that does not exist
local ERR_EXIST = -102    -- path: the entry that already exists
local ERR_NOTDIR = -103   -- path: a component that is not a directory
local ERR_ISDIR = -104    -- path: a directory where a file was needed
local ERR_NOTEMPTY = -105 -- path: the directory that still has entries
local ERR_PERM = -106     -- path: where the permission is missing; detail: r, w, x, owner, root
local ERR_INVAL = -107    -- path; detail: the rule broken (root, subtree, same_request, ...)
local ERR_LIMIT = -108    -- path; detail: the bound and its value
local ERR_NOVOL = -109    -- the volume was never initialised
