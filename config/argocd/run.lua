-- Runs health.lua the way Argo CD does, on one object as JSON on stdin; prints status, a tab and
-- the message. The e2e scenarios run it on the upgrades the operator really writes.
--   lua5.4 config/argocd/run.lua config/argocd/health.lua < upgrade.json
local json = require("dkjson")
local obj, _, err = json.decode(io.read("a"), 1, json.null)
if err then
  io.stderr:write("not JSON: " .. err .. "\n")
  os.exit(2)
end
-- JSON null is a value of its own in dkjson; Argo CD hands Lua nil.
local function strip(v)
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if x == json.null then v[k] = nil else v[k] = strip(x) end
  end
  return v
end
local check = assert(loadfile(arg[1], "t", setmetatable({ obj = strip(obj) }, { __index = _G })))
local hs = check()
print(hs.status .. "\t" .. (hs.message or ""))
