-- wrk script: every request registers a new schema under a new subject, so each one is a
-- real registration (new id, new version, durable in _schemas before the answer); names
-- carry the start time, so a second run against the same registry registers anew.
local threads = {}
local next_thread = 0
local run = os.time()

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  thread:set("run", run)
  table.insert(threads, thread)
end

local counter = 0

request = function()
  counter = counter + 1
  local name = string.format("R%d_%d_%d", run, tid, counter)
  local schema = string.format(
    '{\\"type\\":\\"record\\",\\"name\\":\\"%s\\",\\"fields\\":[{\\"name\\":\\"f\\",\\"type\\":\\"long\\"}]}',
    name)
  return wrk.format("POST", "/subjects/bench-" .. name .. "/versions",
    { ["Content-Type"] = "application/vnd.schemaregistry.v1+json" },
    '{"schema":"' .. schema .. '"}')
end

response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
