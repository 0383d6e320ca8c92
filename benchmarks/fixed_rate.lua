-- Open-loop pacing for wrk (wrk2 is not packaged): appended to mixed.lua when a fixed
-- rate is asked for. Each thread owns a schedule of RATE / THREADS requests per second
-- on the monotonic clock (LuaJIT ffi); delay() hands every request the next slot, so a
-- slow response on one connection does not slow the others and late slots are caught
-- up, keeping the average rate. Latency is still timed from the send (as hey and wrk
-- do), so keep CONNECTIONS well above RATE x p99 to avoid coordinated omission.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } sm_timespec;
int clock_gettime(int clk, sm_timespec *tp);
]]
local ts = ffi.new("sm_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval = 1000 * THREADS / RATE
local next_slot = nil

function delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now + math.random() * interval end
  local slot = next_slot
  next_slot = next_slot + interval
  local wait = slot - now
  if wait <= 0 then return 0 end
  return math.floor(wait + 0.5)
end
