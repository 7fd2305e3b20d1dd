-- wrk script for the webhook benchmarks (bench/post_load.py): exactly QUOTA posts per
-- thread, bodies "PREFIX N" numbered from FIRST, then the thread stops.
--
-- wrk runs for a duration, not a number of requests. delay() is called once before each
-- request is written, so it reserves the request there: once QUOTA are reserved the
-- connection sleeps instead, and no request past QUOTA is ever sent. When the last answer
-- came the thread stops and prints "portway-posts-done": wrk's main thread sleeps for the
-- whole -d, so bench/post_load.py ends it with SIGINT on that line (wrk then reports).
--
-- Arguments (after "--"): QUOTA FIRST PREFIX. The Authorization and Content-Type headers
-- come from wrk's -H options.

local quota, first, prefix = 0, 0, "post"
local reserved = 0
local written = 0
-- globals, for thread:get() in done()
answered, refused = 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1])
  first = tonumber(args[2]) or 0
  prefix = args[3] or "post"
end

function delay()
  if reserved < quota then
    reserved = reserved + 1
    return 0
  end
  return 3600000
end

-- wrk also calls request() once when the thread starts, without sending what it returns:
-- that is why the count of posts is kept in delay() and in response(), not here.
function request()
  local body = prefix .. " " .. (first + written)
  written = written + 1
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 202 then
    refused = refused + 1
  end
  if answered == quota then
    io.write("portway-posts-done\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("portway-posts answered=%d refused=%d\n",
      thread:get("answered"), thread:get("refused")))
  end
end
