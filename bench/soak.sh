#!/usr/bin/env bash
# Soak benchmark (bench/README.md, "Soak"): minutes of constant-rate load through the whole
# pipeline (agentward with the cached JWT, the default policy and a hash-chained audit file, as in
# bench/run.sh), watching what a 15 s run cannot show: memory that grows, stalls, lost audit
# records, and an audit file that no longer verifies. Same CPU split as run.sh (vegeta on
# BENCH_LOAD_CPU, upstream + agentward on BENCH_SERVER_CPU).
#
#   1. capacity: unless SOAK_RATE or SOAK_CAPACITY is given, 3 s warm-up then 10 s of wrk -c32
#      against agentward (run.sh's closed loop); the soak rate is SOAK_SHARE (70) % of it;
#   2. the soak: vegeta at that rate for SOAK_MINUTES; every SOAK_SAMPLE s agentward's RSS and CPU
#      (/proc) and the audit file's size, and its heap (bench/memory-probe.ts, a preload: no
#      endpoint in src/); --trace-gc for every collection's pause;
#   3. agentward is stopped (SIGTERM: it drains and flushes the audit file), then: stalls (any 1 s
#      with p99 over SOAK_STALL_MS or nothing completed), RSS after SOAK_WARMUP s within ±10 % of
#      its median, every answered request's x-request-id found in the audit file, and
#      `node src/main.ts audit verify` on the file.
# Writes bench/results/<stamp>-soak.md (and .raw, gitignored). Exits non-zero when a check fails
# (a lost record, a verify failure, RSS out of its band, a stall), after writing the report.
#
#   bash bench/soak.sh
#   SOAK_MINUTES=1 SOAK_RATE=1000 bash bench/soak.sh     (a quick try)
#
# Knobs (environment): SOAK_MINUTES (10), SOAK_RATE (req/s; default SOAK_SHARE % of the capacity),
# SOAK_CAPACITY (req/s; default measured), SOAK_SHARE (70), SOAK_SAMPLE (s, 10), SOAK_WARMUP (s, 60),
# SOAK_TIMEOUT (s, 5: a caller gives up after it), SOAK_STALL_MS (1000), SOAK_PORT_BASE (18200),
# SOAK_MAX_CONNECTIONS (0: a connection per request in flight; N: at most N, as open-loop.sh),
# SOAK_TIME_LIMIT (s, from the minutes), BENCH_LOAD_CPU (1), BENCH_SERVER_CPU (0),
# BENCH_QUIET_BUDGET (s, 60).
#
# Only 127.0.0.1 is ever targeted; the load is bounded in time (SOAK_MINUTES) and rate.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_NAME=soak

MINUTES=${SOAK_MINUTES:-10}
SHARE=${SOAK_SHARE:-70}
SAMPLE=${SOAK_SAMPLE:-10}
WARMUP=${SOAK_WARMUP:-60}
TIMEOUT=${SOAK_TIMEOUT:-5}
STALL_MS=${SOAK_STALL_MS:-1000}
MAX_CONNECTIONS=${SOAK_MAX_CONNECTIONS:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
PORT_BASE=${SOAK_PORT_BASE:-18200}
PORT_BASE_KNOB=SOAK_PORT_BASE
SECONDS_OF_LOAD=$((MINUTES * 60))
# The load, callers' last timeouts, capacity, analysis of ~1.5 M results and verify of ~1 GB.
TIME_LIMIT=${SOAK_TIME_LIMIT:-$((SECONDS_OF_LOAD * 3 / 2 + TIMEOUT + 420))}
REQUEST_PATH=/api/items
AUDIENCE=https://tools.bench.test
# agentward audit verify reads the whole file into one string today; past V8's longest string
# (2^29 - 24 characters, ~512 MiB) it cannot (see the report).
VERIFY_STRING_LIMIT=$(( (1 << 29) - 24 ))

. scripts/toolchain.sh
. scripts/vegeta.sh
. bench/lib.sh
ensure_packages wrk curl
pin_cpus

P_ISSUER=$PORT_BASE
P_UPSTREAM=$((PORT_BASE + 1))
P_AW=$((PORT_BASE + 5))
P_AW_ADMIN=$((PORT_BASE + 15))
ports_free "$P_ISSUER" "$P_UPSTREAM" "$P_AW" "$P_AW_ADMIN"
begin_run

log "work dir $WORK; ${MINUTES} min"
start_issuer
start_upstream
start_traced_agentward $((SAMPLE * 1000))
AW_PID=${PID[agentward]}
AUDIT=$WORK/agentward-audit.jsonl
URL=http://127.0.0.1:$P_AW$REQUEST_PATH
wait_until 20 upstream answers_http "http://127.0.0.1:$P_UPSTREAM$REQUEST_PATH"
wait_until 90 agentward http_200 "http://127.0.0.1:$P_AW_ADMIN/readyz"

STAMP=$(date -u +%Y-%m-%d-%H%M)
mkdir -p bench/results
RAW=bench/results/$STAMP-soak.raw
RESULTS=bench/results/$STAMP-soak.md
: >"$RAW"
check_valid agentward "$URL" "$(bearer issuer/token)"
check_token_probes agentward "$URL"
log "checks passed"

# ---------------------------------------------------------------------------------------------
# 1. The rate.
capacity_note=given
if [ -n "${SOAK_RATE:-}" ]; then
  RATE=$SOAK_RATE
  CAPACITY=${SOAK_CAPACITY:--}
  capacity_note="rate given (SOAK_RATE)"
else
  if [ -n "${SOAK_CAPACITY:-}" ]; then
    CAPACITY=$SOAK_CAPACITY
    capacity_note="given (SOAK_CAPACITY)"
  else
    wait_quiet
    wrk_run() { timeout $(($1 + 20)) "${PIN_LOAD[@]}" wrk -t1 -c32 -d"$1s" --timeout 5s -s bench/report.lua -H "Authorization: Bearer $TOKEN" "$URL"; }
    wrk_run 3 >/dev/null
    wrk_run 10 >"$WORK/capacity.out"
    { echo "===== capacity (wrk -t1 -c32 -d10s)"; cat "$WORK/capacity.out"; } >>"$RAW"
    line=$(grep '^RESULT ' "$WORK/capacity.out") || die "no result from wrk:\n$(cat "$WORK/capacity.out")"
    declare -A r=()
    for kv in ${line#RESULT }; do r[${kv%%=*}]=${kv#*=}; done
    [ "${r[status_err]}" = 0 ] && [ "${r[timeouts]}" = 0 ] || die "the capacity run had errors:\n$(cat "$WORK/capacity.out")"
    CAPACITY=$(awk -v n="${r[requests]}" -v d="${r[duration_us]}" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
    capacity_note="measured: wrk -t1 -c32, 10 s after a 3 s warm-up, as bench/run.sh"
    unset r
  fi
  RATE=$((CAPACITY * SHARE / 100))
fi
[ "$RATE" -gt 0 ] || die "rate $RATE req/s"
log "capacity $CAPACITY req/s ($capacity_note); soak at $RATE req/s for ${MINUTES} min"

# ---------------------------------------------------------------------------------------------
# 2. The soak. The audit file's records so far (checks, capacity) are counted first, once written.
sleep 2
AUDIT_BEFORE=$(wc -l <"$AUDIT")
wait_quiet
# sampler: every SAMPLE s, "unix_ms rss_kib cpu_ticks audit_bytes" (on the load CPU).
(
  taskset -pc "$LOAD_CPU" "$BASHPID" >/dev/null 2>&1 || true
  sleeper=
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  while :; do
    echo "$(date +%s%3N) $(rss_kib "$AW_PID") $(cpu_ticks "$AW_PID") $(stat -c %s "$AUDIT" 2>/dev/null || echo 0)" >>"$WORK/samples"
    sleep "$SAMPLE" &
    sleeper=$!
    wait "$sleeper"
  done
) &
PID[sampler]=$!
read -r DROPS0 SYNRE0 <<<"$(tcp_counters)"
FROM=$(date +%s%3N)
vegeta_attack "$URL" "$RATE" "$SECONDS_OF_LOAD" "$TIMEOUT" "$MAX_CONNECTIONS" "$WORK/soak.bin"
TO=$(date +%s%3N)
read -r DROPS1 SYNRE1 <<<"$(tcp_counters)"
RSS_END=$(rss_kib "$AW_PID")
stop sampler || true
drained=$(wait_idle "$AW_PID" 60)
aw_status=0
stop agentward || aw_status=$?
log "load done; agentward drained in ${drained}s and exited with status $aw_status"
echo "soak from $FROM to $TO ms; agentward drained in ${drained}s, exit status $aw_status; audit records before the soak: $AUDIT_BEFORE" >>"$RAW"

# ---------------------------------------------------------------------------------------------
# 3. Analysis (on the load CPU, after the load).
log "analysing $(du -h "$WORK/soak.bin" | cut -f1) of results and $(du -h "$AUDIT" | cut -f1) of audit records"
"${PIN_LOAD[@]}" vegeta encode --to json <"$WORK/soak.bin" | "${PIN_LOAD[@]}" node bench/vegeta-stats.ts --duration "$SECONDS_OF_LOAD" \
  --ids "$WORK/ids" --windows "$WORK/windows" --stall-p99-ms "$STALL_MS" >"$WORK/soak.stats"
{ echo "===== vegeta"; cat "$WORK/soak.stats"; } >>"$RAW"
"${PIN_LOAD[@]}" node bench/soak-report.ts --samples "$WORK/samples" --probe "$AW_MEMORY_PROBE" --gc-log "$WORK/agentward.log" \
  --from "$FROM" --to "$TO" --warmup "$WARMUP" --stats "$WORK/soak.stats" --ids "$WORK/ids" --audit "$AUDIT" \
  --audit-skip "$AUDIT_BEFORE" --clk-tck "$CLK_TCK" --out "$WORK/sections.md" >"$WORK/summary"
{ echo "===== analysis"; cat "$WORK/summary"; echo "===== per-second windows (s sent completed ok p99_ms max_ms)"; cat "$WORK/windows"; } >>"$RAW"

AUDIT_BYTES=$(stat -c %s "$AUDIT")
AUDIT_LINES=$(wc -l <"$AUDIT")
verify_status=0
verify_started=$SECONDS
"${PIN_LOAD[@]}" timeout 600 node src/main.ts audit verify "$AUDIT" >"$WORK/verify.out" 2>&1 || verify_status=$?
verify_secs=$((SECONDS - verify_started))
verify_out=$(tail -c 600 "$WORK/verify.out" | tr '\n' ' ' | sed 's/ *$//')
{ echo "===== audit verify (exit $verify_status, ${verify_secs}s)"; cat "$WORK/verify.out"; } >>"$RAW"
if [ "$verify_status" = 0 ]; then verify_note="passed in ${verify_secs}s: $verify_out"
elif [ "$AUDIT_BYTES" -gt "$VERIFY_STRING_LIMIT" ]; then
  verify_note="FAILED (exit $verify_status) on a file of $((AUDIT_BYTES / 1048576)) MiB: \`audit verify\` reads the whole file into one string, and V8's longest string is ~512 MiB (2^29 − 24 characters), so a file this size cannot be verified by it (issue 14). Its output: $verify_out"
else verify_note="FAILED (exit $verify_status): $verify_out"
fi

# ---------------------------------------------------------------------------------------------
# Report.
declare -A v=() au=() rs=() hp=() gc=()
kv_into() { local -n into=$1; local kv; for kv in $2; do into[${kv%%=*}]=${kv#*=}; done; }
kv_into v "$(grep '^RESULT ' "$WORK/soak.stats" | cut -d' ' -f2-)"
kv_into au "$(grep '^AUDIT ' "$WORK/summary" | cut -d' ' -f2-)"
kv_into rs "$(grep '^RSS ' "$WORK/summary" | cut -d' ' -f2-)"
kv_into hp "$(grep '^HEAP ' "$WORK/summary" | cut -d' ' -f2-)"
kv_into gc "$(grep '^GC ' "$WORK/summary" | cut -d' ' -f2-)"
stalls=$(grep -c '^STALL ' "$WORK/soak.stats" || true)
FAILED=()
[ "${au[missing]}" = 0 ] || FAILED+=("${au[missing]} answered requests have no audit record")
[ "$verify_status" = 0 ] || FAILED+=("audit verify failed (exit $verify_status)")
[ "${rs[within_10pct]}" = yes ] || FAILED+=("RSS after warm-up left ±10 % of its median (band ${rs[band_pct]} %)")
[ "$stalls" = 0 ] || FAILED+=("$stalls stall(s)")
[ "${v[port_errors]}" = 0 ] || FAILED+=("${v[port_errors]} requests never left: vegeta had no free local port (TIME_WAIT from timed-out connections), so the run measured the client; try SOAK_MAX_CONNECTIONS")
awk -v s="${v[sent_rate]}" -v o="$RATE" 'BEGIN { exit !(s < 0.95 * o) }' && FAILED+=("vegeta sent only ${v[sent_rate]} of $RATE req/s (starved of CPU, or blocked on connections)")
[ "$aw_status" = 0 ] || FAILED+=("agentward exited with status $aw_status on SIGTERM")
versions="node $(node -v), vegeta $(go version -m "$(command -v vegeta)" 2>/dev/null | awk '$1 == "mod" {print $3}'), wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'), opa $(opa version | awk '/^Version:/ {print $2}')"
{
  echo "# Soak, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- command: \`$(command_line 'BENCH|SOAK' bench/soak.sh)\` (agentward $(revision))"
  echo "- machine: $(machine)"
  runtime_note
  echo "- versions: $versions"
  echo "- agentward: JWT (token cache on), the default policy, hash-chained audit file, log level warn; \`--trace-gc\` and bench/memory-probe.ts"
  echo "- load: vegeta, constant $RATE req/s ($SHARE % of a capacity of $CAPACITY req/s, $capacity_note) for ${MINUTES} min, keep-alive ($([ "$MAX_CONNECTIONS" -gt 0 ] && echo "at most $MAX_CONNECTIONS connections" || echo "a connection per request in flight")), callers give up after ${TIMEOUT}s"
  echo "- CPUs: vegeta on CPU ${PIN_LOAD[2]:-any}; upstream and agentward share CPU ${PIN_SERVER[2]:-any}"
  echo
  echo "| what | result |"
  echo "|---|---|"
  echo "| requests sent (rate achieved) | ${v[sent]} (${v[sent_rate]} req/s) |"
  echo "| answered 2xx, goodput | ${v[success_pct]} %, ${v[goodput]} req/s |"
  echo "| requests that never left (vegeta had no free local port) | ${v[port_errors]} |"
  echo "| latency p50 / p99 / p99.9 / max | ${v[p50_ms]} / ${v[p99_ms]} / ${v[p999_ms]} / ${v[max_ms]} ms |"
  echo "| stalls (1 s with p99 > ${STALL_MS} ms or nothing completed) | $stalls |"
  echo "| connection attempts the kernel dropped (full accept queue) / SYNs sent again, system-wide (each a caller waiting ≥ 1 s more) | $((DROPS1 - DROPS0)) / $((SYNRE1 - SYNRE0)) |"
  echo "| RSS after ${WARMUP} s: first / last / min / max / median | ${rs[first_mib]} / ${rs[last_mib]} / ${rs[min_mib]} / ${rs[max_mib]} / ${rs[median_mib]} MiB |"
  echo "| RSS band around its median, trend | ±${rs[band_pct]} % ($([ "${rs[within_10pct]}" = yes ] && echo "within ±10 %" || echo "OUTSIDE ±10 %")), ${rs[slope_mib_per_min]} MiB/min |"
  echo "| RSS right after the load | $((RSS_END / 1024)) MiB |"
  echo "| heap used after ${WARMUP} s: first / last / max | ${hp[first_mib]} / ${hp[last_mib]} / ${hp[max_mib]} MiB |"
  echo "| GC: collections (young / mark-compact), pauses total / median / p99 / max | ${gc[count]} (${gc[young]} / ${gc[mark_compacts]}), ${gc[total_ms]} / ${gc[median_ms]} / ${gc[p99_ms]} / ${gc[max_ms]} ms |"
  echo "| audit records of the soak / answered requests / answered found in the file / missing | ${au[records]} / ${au[answered]} / ${au[matched]} / **${au[missing]}** |"
  echo "| audit records without an answer (the caller had given up) | ${au[unanswered]} |"
  echo "| audit file | $AUDIT_LINES records, $((AUDIT_BYTES / 1048576)) MiB |"
  echo "| \`agentward audit verify\` | $verify_note |"
  echo
  if [ ${#FAILED[@]} -eq 0 ]; then echo "All checks passed: no record lost, the file verifies, RSS within ±10 % after warm-up, no stall."
  else echo "**Failed:** $(IFS=';'; echo "${FAILED[*]}" | sed 's/;/; /g')."
  fi
  codes=$(grep '^CODES ' "$WORK/soak.stats" | cut -d' ' -f2-)
  echo
  echo "Answers by status (0 = no answer: timeout, refused or reset): $codes$(grep '^ERROR ' "$WORK/soak.stats" | head -n1 | sed 's/^ERROR \([0-9]*\) /; most frequent error (\1×): /')"
  echo
  cat "$WORK/sections.md"
} >"$RESULTS"
{ echo; echo "===== report"; cat "$RESULTS"; } >>"$RAW"
cat "$RESULTS"
log "wrote $RESULTS and $RAW"
[ ${#FAILED[@]} -eq 0 ] || die "$(printf '%s\n' "${FAILED[@]}")"
