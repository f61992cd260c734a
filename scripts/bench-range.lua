-- wrk script for scripts/bench-range: one 64 KiB Range request per call, at
-- a random 64 KiB-aligned offset inside the file.
--
--   wrk -t2 -c64 -d10s -s scripts/bench-range.lua URL -- FILE_SIZE [CHUNK]
--
-- FILE_SIZE (bytes) may also come from the environment as BENCH_FILE_SIZE.
-- Every answer that is not a 206 whose Content-Length is CHUNK counts as bad;
-- done() prints "bench-range: good=N bad=N" (and the first few bad statuses)
-- for scripts/bench-range to parse.

local threads = {}
local nthreads = 0

function setup(thread)
   nthreads = nthreads + 1
   thread:set("tid", nthreads)
   table.insert(threads, thread)
end

local size, chunk, nchunks
good = 0
bad = 0
badinfo = ""

function init(args)
   size = tonumber(args[1] or os.getenv("BENCH_FILE_SIZE") or "")
   chunk = tonumber(args[2] or os.getenv("BENCH_CHUNK") or "65536")
   if not size or size < chunk then
      io.stderr:write("bench-range.lua: need the file size (>= chunk) as the first script argument\n")
      os.exit(2)
   end
   nchunks = math.floor(size / chunk)
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function request()
   local a = (math.random(nchunks) - 1) * chunk
   return wrk.format("GET", nil, { ["Range"] = "bytes=" .. a .. "-" .. (a + chunk - 1) })
end

local function header(headers, name)
   local v = headers[name]
   if v then return v end
   local lname = string.lower(name)
   for k, val in pairs(headers) do
      if string.lower(k) == lname then return val end
   end
   return nil
end

function response(status, headers, body)
   if status == 206 and tonumber(header(headers, "Content-Length")) == chunk then
      good = good + 1
   else
      bad = bad + 1
      if bad <= 3 then
         badinfo = badinfo .. " " .. status .. "/" .. tostring(header(headers, "Content-Length"))
      end
   end
end

function done(summary, latency, requests)
   local g, b, info = 0, 0, ""
   for _, t in ipairs(threads) do
      g = g + (t:get("good") or 0)
      b = b + (t:get("bad") or 0)
      local i = t:get("badinfo")
      if i and i ~= "" then info = info .. i end
   end
   io.write(string.format("bench-range: good=%d bad=%d\n", g, b))
   if b > 0 then
      io.write("bench-range: first bad (status/content-length):" .. info .. "\n")
   end
end
