-- wrk script: after the run, print one machine-readable line that run.sh parses. Latencies are
-- in microseconds straight from wrk's histogram, so no unit parsing ("1.23ms", "980us") is needed.
-- wrk counts a response with status > 399 in errors.status; run.sh fails the run if any appear.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f " ..
    "status_err=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
