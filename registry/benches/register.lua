-- wrk script: every request registers a new schema under a new subject, so each one is a
-- real registration (new id, new version, durable in _schemas before the answer).
local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  table.insert(threads, thread)
end

local counter = 0

request = function()
  counter = counter + 1
  local name = string.format("R%d_%d", tid, counter)
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
