-- Mixed traffic for wrk across both stores: ~70% reads, ~30% writes, every request one
-- the API answers with 2xx, so any non-2xx wrk counts is an error. load_test.py prepends
-- the seeded keys (PROJECTS, TASKS, CONTRIBUTORS, ASSETS) as Lua tables, and QUANTILES,
-- the percentiles done() reports besides p50/p95/p99 (merged across slices there).
local json = {["Content-Type"] = "application/json"}
local counter = 0

local function pick(t)
  return t[math.random(#t)]
end

local mix = {
  {30, function() return wrk.format("GET", "/api/projects/npm/" .. pick(PROJECTS)) end},
  {8,  function() return wrk.format("GET", "/api/search?q=" .. pick(PROJECTS)) end},
  {10, function() return wrk.format("GET", "/api/agent/tasks/" .. pick(TASKS)) end},
  {7,  function() return wrk.format("GET", "/api/agent/tasks?limit=20") end},
  {5,  function() return wrk.format("GET", "/v1/contributors/" .. pick(CONTRIBUTORS)) end},
  {5,  function() return wrk.format("GET", "/v1/assets/" .. pick(ASSETS)) end},
  {5,  function() return wrk.format("GET", "/api/projects/count") end},
  {10, function()
    return wrk.format("PUT", "/api/projects/npm/" .. pick(PROJECTS), json,
      '{"version":"1.' .. math.random(1000) .. '.0","description":"load test"}')
  end},
  {8,  function()
    return wrk.format("POST", "/api/agent/tasks", json,
      '{"direction":"load test","task_type":"impl"}')
  end},
  {6,  function()
    return wrk.format("POST", "/v1/contributions", json,
      '{"contributor_id":"' .. pick(CONTRIBUTORS) .. '","asset_id":"' .. pick(ASSETS)
      .. '","cost_amount":"1.50"}')
  end},
  {6,  function()
    return wrk.format("PATCH", "/api/agent/tasks/" .. pick(TASKS), json,
      '{"progress_pct":' .. math.random(100) .. '}')
  end},
}
local total = 0
for _, m in ipairs(mix) do total = total + m[1] end

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  math.randomseed(os.time() + (id or 0) * 7919)
end

function request()
  local r = math.random(total)
  for _, m in ipairs(mix) do
    r = r - m[1]
    if r <= 0 then return m[2]() end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local quantiles = {}
  for i, q in ipairs(QUANTILES or {}) do
    quantiles[i] = string.format("%d", latency:percentile(q))
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,'
    .. '"write":%d,"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"quantiles_us":[%s]}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    table.concat(quantiles, ",")))
end
