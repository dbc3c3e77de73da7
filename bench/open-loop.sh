#!/usr/bin/env bash
# Open-loop benchmark (bench/README.md, "Open loop"): a constant offered rate, whatever the
# answers, as many independent callers load a sidecar. wrk (bench/run.sh) keeps 32 requests in
# flight, so a slow server slows its own load and a queue never builds; here vegeta sends each
# request on schedule, so latency shows what callers feel at a given rate and an overloaded
# server shows how it fails. Contenders, one at a time, each rate in turn:
#   direct      the upstream alone (the baseline of the Δ columns)
#   forwarder   bench/forwarder.ts (node:http + undici, no auth), run as agentward is: what any Node
#               proxy adds, the floor under agentward's Δ columns
#   haproxy     HAProxy + jwt_verify, the same config as bench/run.sh
#   agentward   agentward with the cached JWT, the default policy, a hash-chained audit file, as in
#               bench/run.sh, run with --trace-gc and bench/memory-probe.ts (GC pauses, heap)
# Same CPU split as run.sh: vegeta on BENCH_LOAD_CPU (1), upstream + contender on BENCH_SERVER_CPU (0).
# For each rate, the contenders run one after the other (so each Δ compares runs minutes apart, not
# a whole benchmark apart); each contender warms up once at the first rate before its first step.
# Writes bench/results/<stamp>-open-loop.md (and .raw, gitignored).
#
#   bash bench/open-loop.sh
#   OPEN_RATES="500 1000" OPEN_STEP=5 bash bench/open-loop.sh     (a quick try)
#
# Knobs (environment): OPEN_RATES ("500 1000 2000 3000", req/s), OPEN_STEP (s per rate, 30),
# OPEN_WARMUP (s, 5), OPEN_TIMEOUT (s, 5: a caller gives up after it; vegeta -timeout),
# OPEN_DRAIN (s, 60: longest wait for a contender to work off its backlog after a step),
# OPEN_ONLY ("direct forwarder haproxy agentward"), OPEN_PORT_BASE (18100, ports base..base+15),
# OPEN_MAX_CONNECTIONS (0: vegeta opens a connection for every request in flight, its default;
# N: at most N, later requests wait in vegeta, their wait counted in their latency),
# OPEN_TIME_LIMIT (s, from the steps), BENCH_LOAD_CPU (1), BENCH_SERVER_CPU (0),
# BENCH_QUIET_BUDGET (s, 60), AW_LISTEN_EXTRA (YAML lines added to agentward's listen section,
# e.g. "  maxInFlight: 128" for an overload sweep).
#
# Only 127.0.0.1 is ever targeted; every attack is bounded in time (OPEN_STEP) and rate.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$PATH:/usr/sbin:/sbin" # haproxy lives in sbin
BENCH_NAME=open-loop

read -r -a RATES <<<"${OPEN_RATES:-500 1000 2000 3000}"
STEP=${OPEN_STEP:-30}
WARMUP=${OPEN_WARMUP:-5}
TIMEOUT=${OPEN_TIMEOUT:-5}
DRAIN=${OPEN_DRAIN:-60}
MAX_CONNECTIONS=${OPEN_MAX_CONNECTIONS:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
PORT_BASE=${OPEN_PORT_BASE:-18100}
PORT_BASE_KNOB=OPEN_PORT_BASE
ALL_CONTENDERS=(direct forwarder haproxy agentward)
read -r -a CONTENDERS <<<"${OPEN_ONLY:-${ALL_CONTENDERS[*]}}"
# Per step: the attack, callers' last timeouts, a drain, the quiet wait and the analysis.
TIME_LIMIT=${OPEN_TIME_LIMIT:-$(( ${#RATES[@]} * ${#CONTENDERS[@]} * (STEP + TIMEOUT + 45) + ${#CONTENDERS[@]} * (WARMUP + TIMEOUT) + 180 ))}
REQUEST_PATH=/api/items
AUDIENCE=https://tools.bench.test
for c in "${CONTENDERS[@]}"; do
  [[ " ${ALL_CONTENDERS[*]} " == *" $c "* ]] || { echo "open-loop: unknown contender $c (${ALL_CONTENDERS[*]})" >&2; exit 2; }
done

. scripts/toolchain.sh
. scripts/vegeta.sh
. bench/lib.sh
ensure_packages haproxy curl
pin_cpus

P_ISSUER=$PORT_BASE
P_UPSTREAM=$((PORT_BASE + 1))
P_FORWARDER=$((PORT_BASE + 2))
P_HAPROXY=$((PORT_BASE + 4))
P_AW=$((PORT_BASE + 5))
P_AW_ADMIN=$((PORT_BASE + 15))
ports_free "$P_ISSUER" "$P_UPSTREAM" "$P_FORWARDER" "$P_HAPROXY" "$P_AW" "$P_AW_ADMIN"
begin_run
want() { [[ " ${CONTENDERS[*]} " == *" $1 "* ]]; }

log "work dir $WORK; rates ${RATES[*]} req/s, ${STEP}s each; contenders: ${CONTENDERS[*]}"
start_issuer
start_upstream
if want forwarder; then
  # As agentward runs (Node flags, allocator, memory limit), so that what separates the two rows is
  # agentward's own work; run.sh gives it Node's defaults instead, its fastest in a closed loop.
  start_node forwarder bench/forwarder.ts "$P_FORWARDER" "http://127.0.0.1:$P_UPSTREAM"
  FORWARDER_RUNTIME_NOTE="the bare Node forwarder runs the same way (flags, allocator, memory limit), without the bundle"
fi
if want haproxy; then start_haproxy "$P_HAPROXY"; fi
if want agentward; then start_traced_agentward 5000; fi

declare -A URL=(
  [direct]="http://127.0.0.1:$P_UPSTREAM$REQUEST_PATH"
  [forwarder]="http://127.0.0.1:$P_FORWARDER$REQUEST_PATH"
  [haproxy]="http://127.0.0.1:$P_HAPROXY$REQUEST_PATH"
  [agentward]="http://127.0.0.1:$P_AW$REQUEST_PATH"
)
declare -A PROC=([direct]=upstream [forwarder]=forwarder [haproxy]=haproxy [agentward]=agentward)
declare -A LABEL=([direct]="upstream direct" [forwarder]="bare Node forwarder (no auth)" [haproxy]="HAProxy + jwt_verify" [agentward]="agentward (JWT + policy)")
wait_until 20 upstream answers_http "${URL[direct]}"
if want forwarder; then wait_until 20 forwarder answers_http "${URL[forwarder]}"; fi
if want haproxy; then wait_until 20 haproxy answers_http "${URL[haproxy]}"; fi
if want agentward; then wait_until 90 agentward http_200 "http://127.0.0.1:$P_AW_ADMIN/readyz"; fi

STAMP=$(date -u +%Y-%m-%d-%H%M)
mkdir -p bench/results
RAW=bench/results/$STAMP-open-loop.raw
RESULTS=bench/results/$STAMP-open-loop.md
: >"$RAW"
# Correctness before speed, as in run.sh: 200 with the upstream's body, and the gates refuse.
for c in "${CONTENDERS[@]}"; do
  check_valid "$c" "${URL[$c]}" "$(bearer issuer/token)"
  [ "$c" = direct ] || [ "$c" = forwarder ] || check_token_probes "$c" "${URL[$c]}"
done
log "checks passed"

# attack CONTENDER RATE SECONDS OUT: one step of vegeta against CONTENDER.
attack() { vegeta_attack "${URL[$1]}" "$2" "$3" "$TIMEOUT" "$MAX_CONNECTIONS" "$4"; }
now_ms() { date +%s%3N; }
# last_heap_mib UNTIL_MS: heapUsed of the probe's last sample taken before UNTIL_MS.
last_heap_mib() {
  awk -v until="$1" -F'[:,}]' '/"heapUsed"/ { for (i = 1; i < NF; i++) { if ($i ~ /"t"$/) t = $(i + 1); if ($i ~ /"heapUsed"$/) h = $(i + 1) } if (t < until) last = h }
    END { if (last != "") printf "%.0f", last / 1048576; else printf "-" }' "$AW_MEMORY_PROBE"
}

declare -A RES=() GC=() WARMED=()
FLAGS=() # steps whose figures describe the load generator rather than the contender
for rate in "${RATES[@]}"; do
  for c in "${CONTENDERS[@]}"; do
    pid=${PID[${PROC[$c]}]}
    if [ -z "${WARMED[$c]:-}" ]; then
      log "$c: ${WARMUP}s warm-up at ${RATES[0]} req/s"
      attack "$c" "${RATES[0]}" "$WARMUP" "$WORK/$c-warmup.bin"
      WARMED[$c]=1
      wait_idle "$pid" "$DRAIN" >/dev/null
    fi
    wait_quiet
    log "$c: ${rate} req/s for ${STEP}s"
    cpu0=$(cpu_ticks "$pid")
    read -r core_busy0 core_total0 <<<"$(core_ticks "$SERVER_CPU")"
    up0=$(cpu_ticks "${PID[upstream]}")
    read -r drops0 synre0 <<<"$(tcp_counters)"
    from=$(now_ms)
    attack "$c" "$rate" "$STEP" "$WORK/$c-$rate.bin"
    to=$(now_ms)
    read -r drops1 synre1 <<<"$(tcp_counters)"
    read -r core_busy1 core_total1 <<<"$(core_ticks "$SERVER_CPU")"
    up1=$(cpu_ticks "${PID[upstream]}")
    rss=$(rss_kib "$pid")
    cpu_run=$(cpu_ticks "$pid")
    # A contender that fell behind keeps working after the attack: its CPU per request counts
    # that work too (up to OPEN_DRAIN seconds), or an overloaded step would look cheap.
    drained=$(wait_idle "$pid" "$DRAIN")
    cpu1=$(cpu_ticks "$pid")
    ours=$((up1 - up0))
    [ "$c" = direct ] || ours=$((ours + cpu_run - cpu0))
    other=$(( (core_busy1 - core_busy0 - ours) * 100 / (core_total1 - core_total0 + 1) ))
    [ ${#PIN_SERVER[@]} -gt 0 ] || other=-
    "${PIN_LOAD[@]}" vegeta encode --to json <"$WORK/$c-$rate.bin" | "${PIN_LOAD[@]}" node bench/vegeta-stats.ts --duration "$STEP" >"$WORK/$c-$rate.stats"
    { echo "===== $c at $rate req/s (${STEP}s, from $from to $to ms, drained in ${drained}s)"; cat "$WORK/$c-$rate.stats"; } >>"$RAW"
    line=$(grep '^RESULT ' "$WORK/$c-$rate.stats") || die "$c at $rate: no result from vegeta-stats"
    declare -A r=()
    for kv in ${line#RESULT }; do r[${kv%%=*}]=${kv#*=}; done
    cpu_rss=$(awk -v n="${r[sent]}" -v cpu=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v rss="$rss" '
      BEGIN { printf "%s|%.0f", (n > 0 ? sprintf("%.0f", cpu / hz * 1e6 / n) : "-"), rss / 1024 }')
    awk -v s="${r[sent_rate]}" -v o="$rate" 'BEGIN { exit !(s < 0.95 * o) }' &&
      FLAGS+=("${LABEL[$c]} at $rate req/s: vegeta sent only ${r[sent_rate]} req/s (starved of CPU, or blocked on connections)")
    [ $((drops1 - drops0 + synre1 - synre0)) = 0 ] ||
      FLAGS+=("${LABEL[$c]} at $rate req/s: the kernel dropped $((drops1 - drops0)) connection attempts from a full accept queue and sent $((synre1 - synre0)) SYNs again; each of those callers waited at least 1 s more (TCP's retransmission timeout)")
    echo "tcp $c $rate listen_drops=$((drops1 - drops0)) syn_retrans=$((synre1 - synre0))" >>"$RAW"
    [ "${r[port_errors]}" = 0 ] ||
      FLAGS+=("${LABEL[$c]} at $rate req/s: ${r[port_errors]} requests never left, vegeta had no free local port (TIME_WAIT from timed-out connections; try OPEN_MAX_CONNECTIONS)")
    RES[$c,$rate]="${r[sent_rate]}|${r[success_pct]}|${r[goodput]}|${r[p50_ms]}|${r[p99_ms]}|${r[ok_p99_ms]}|${r[max_ms]}|$cpu_rss|$other"
    echo "derived $c $rate sent_rate|success_pct|goodput|p50|p99|ok_p99|max|cpu_us_per_req|rss_mib|other = ${RES[$c,$rate]}" >>"$RAW"
    if [ "$c" = agentward ]; then
      GC[$rate]="$("${PIN_LOAD[@]}" node bench/gc-trace.ts "$WORK/agentward.log" "$AW_MEMORY_PROBE" "$from" "$to") sent=${r[sent]} seconds=$(( (to - from) / 1000 )) heap_mib=$(last_heap_mib "$to")"
      echo "${GC[$rate]}" >>"$RAW"
    fi
    unset r
  done
done

# ---------------------------------------------------------------------------------------------
# Report.
versions="node $(node -v), HAProxy $(haproxy -v | head -n1 | awk '{print $3}'), vegeta $(go version -m "$(command -v vegeta)" 2>/dev/null | awk '$1 == "mod" {print $3}') ($(go version -m "$(command -v vegeta)" 2>/dev/null | head -n1 | awk '{print $2}')), opa $(opa version | awk '/^Version:/ {print $2}')"
# delta VALUE BASE: "+x.xx" (ms over the upstream alone at the same rate), "-" without a base.
delta() { [ -n "$2" ] && awk -v v="$1" -v b="$2" 'BEGIN { printf "%+.2f", v - b }' || echo -; }
{
  echo "# Open-loop benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- command: \`$(command_line 'BENCH|OPEN' bench/open-loop.sh)\` (agentward $(revision))"
  [ -z "${AW_LISTEN_EXTRA:-}" ] || echo "- agentward's listen section also had: \`$(echo "$AW_LISTEN_EXTRA" | sed 's/^ *//' | paste -sd';' | sed 's/;/; /g')\` (AW_LISTEN_EXTRA)"
  [ -z "${BENCH_SERVER_QUOTA:-}" ] || echo "- server side (upstream + contender) limited to ${BENCH_SERVER_QUOTA} % of its CPU (BENCH_SERVER_QUOTA)"
  echo "- machine: $(machine)"
  runtime_note
  echo "- versions: $versions"
  echo "- load: vegeta, constant rate, ${STEP}s per rate, keep-alive ($([ "$MAX_CONNECTIONS" -gt 0 ] && echo "at most $MAX_CONNECTIONS connections" || echo "a connection for every request in flight")), callers give up after ${TIMEOUT}s; GET $REQUEST_PATH with one valid ES256 token; each contender warmed up ${WARMUP}s at ${RATES[0]} req/s first"
  echo "- CPUs: vegeta on CPU ${PIN_LOAD[2]:-any}; upstream and contender share CPU ${PIN_SERVER[2]:-any}"
  echo
  echo "| offered req/s | contender | sent req/s | success % | goodput req/s | p50 ms | p99 ms | Δp50 ms | Δp99 ms | p99 of 2xx ms | max ms | CPU µs/req | RSS MiB | other load % |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for rate in "${RATES[@]}"; do
    base50='' base99=''
    if [ -n "${RES[direct,$rate]:-}" ]; then IFS='|' read -r _ _ _ base50 base99 _ <<<"${RES[direct,$rate]}"; fi
    for c in "${CONTENDERS[@]}"; do
      IFS='|' read -r sent_rate ok_pct goodput p50 p99 okp99 max cpu rss other <<<"${RES[$c,$rate]}"
      d50=- d99=-
      [ "$c" = direct ] || { d50=$(delta "$p50" "$base50"); d99=$(delta "$p99" "$base99"); }
      [ "$c" = direct ] && cpu=-
      echo "| $rate | ${LABEL[$c]} | $sent_rate | $ok_pct | $goodput | $p50 | $p99 | $d50 | $d99 | $okp99 | $max | $cpu | $rss | $other |"
    done
  done
  echo
  echo "success %: 2xx answers / requests sent; goodput: 2xx answers per second of the step. Latencies"
  echo "are over every request sent, one that timed out counting at ${TIMEOUT}s (what the caller felt);"
  echo "\"p99 of 2xx\" over the answered ones only. Δ: over the upstream alone at the same rate. CPU µs/req:"
  echo "the contender's CPU from the step's start until it had worked off its backlog, per request sent."
  echo "RSS: right after the step (the upstream's for \"direct\"). Other load %: the server CPU busy with"
  echo "anything else during the step."
  if want agentward; then
    echo
    echo "agentward's garbage collection during each step (\`--trace-gc\`; the pause is the main thread's,"
    echo "during which no request moves; young = scavenges):"
    echo
    echo "| offered req/s | collections (young / mark-compact) | per s | pause ms, total | pause µs per request | median ms | p99 ms | max ms | heap used MiB |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for rate in "${RATES[@]}"; do
      declare -A g=()
      for kv in ${GC[$rate]#GC }; do g[${kv%%=*}]=${kv#*=}; done
      awk -v rate="$rate" -v n="${g[count]}" -v y="${g[young]}" -v m="${g[mark_compacts]}" -v tot="${g[total_ms]}" -v sent="${g[sent]}" \
        -v s="${g[seconds]}" -v med="${g[median_ms]}" -v p99="${g[p99_ms]}" -v max="${g[max_ms]}" -v heap="${g[heap_mib]}" '
        BEGIN { printf "| %s | %d (%d / %d) | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n", rate, n, y, m, n / (s > 0 ? s : 1), tot, (sent > 0 ? tot * 1000 / sent : 0), med, p99, max, heap }'
      unset g
    done
  fi
  if [ ${#FLAGS[@]} -gt 0 ]; then
    echo
    echo "**Steps that measured the load generator, not the contender:**"
    echo
    printf -- '- %s\n' "${FLAGS[@]}"
  fi
  codes=$(grep -h '^CODES ' "$WORK"/*-*.stats 2>/dev/null | grep -v '^CODES 200:[0-9]*$' || true)
  if [ -n "$codes" ]; then
    echo
    echo "Steps with answers other than 200 (status:count; 0 = no answer: timeout, refused or reset):"
    echo
    for f in "$WORK"/*-*.stats; do
      cl=$(grep '^CODES ' "$f")
      [[ $cl =~ ^CODES\ 200:[0-9]+$ ]] && continue
      name=$(basename "$f" .stats)
      echo "- ${name%-*} at ${name##*-} req/s: ${cl#CODES }$(grep '^ERROR ' "$f" | head -n1 | sed 's/^ERROR \([0-9]*\) /; most frequent error (\1×): /')"
    done
  fi
} >"$RESULTS"
{ echo; echo "===== report"; cat "$RESULTS"; } >>"$RAW"
cat "$RESULTS"
log "wrote $RESULTS and $RAW"
