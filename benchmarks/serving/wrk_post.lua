-- wrk script of kfpkit's serving benchmark: POST one fixed JSON body, print a one-line JSON summary.
--
--   wrk -t1 -c16 -d10s --latency -s wrk_post.lua http://127.0.0.1:PORT/v2/models/NAME/infer -- body.json
--
-- The body is read from the file named after "--" (in every wrk thread). done() prints
--   WRK_JSON {"requests": ..., "duration_us": ..., "p50_us": ..., "p99_us": ..., "status_errors": ...}
-- where status_errors counts responses with status >= 400 and the *_errors/timeouts are socket errors.

function init(args)
   local path = args[1]
   if path == nil then
      error("wrk_post.lua: pass the body file after '--'")
   end
   local file = assert(io.open(path, "rb"))
   local body = file:read("*a")
   file:close()
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, ' ..
      '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
      '"max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
