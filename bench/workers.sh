#!/usr/bin/env bash
# Two processes on two cores (issue 16, bench/README.md "Workers"): agentward with `workers: 2`
# against HAProxy with `nbthread 2`, and each with one (workers: 1 / nbthread 1) for the scaling.
# Nothing is pinned: the contender, the upstream and wrk (2 threads, 64 connections) share both
# CPUs, the same for every contender. Same token, policy, audit file and checks as bench/run.sh;
# DPoP off (oauth.dpop.mode: disabled), as several workers need shared state for proofs.
# Writes bench/results/<stamp>-workers.md (raw output in .raw, gitignored).
#
#   bash bench/workers.sh
#
# Knobs (environment): WORKERS_DURATION (s, 15), WORKERS_WARMUP (s, 3), WORKERS_CONNECTIONS (64),
# WORKERS_ONLY ("haproxy-1 haproxy-2 agentward-1 agentward-2"), WORKERS_PORT_BASE (18300),
# BENCH_QUIET_BUDGET (s, 60). Only 127.0.0.1 is ever targeted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$PATH:/usr/sbin:/sbin"
BENCH_NAME=workers
DURATION=${WORKERS_DURATION:-15}
WARMUP=${WORKERS_WARMUP:-3}
CONNECTIONS=${WORKERS_CONNECTIONS:-64}
PORT_BASE=${WORKERS_PORT_BASE:-18300}
PORT_BASE_KNOB=WORKERS_PORT_BASE
TIME_LIMIT=600
ALL_CONTENDERS=(haproxy-1 haproxy-2 agentward-1 agentward-2)
read -r -a CONTENDERS <<<"${WORKERS_ONLY:-${ALL_CONTENDERS[*]}}"
REQUEST_PATH=/api/items
AUDIENCE=https://tools.bench.test

. scripts/toolchain.sh
. bench/lib.sh
ensure_packages haproxy wrk curl
# Nothing pinned: both CPUs for everyone (wait_quiet looks at CPU 0 and CPU 1).
PIN_SERVER=() PIN_LOAD=()
SERVER_CPU=0 LOAD_CPU=1

P_ISSUER=$PORT_BASE
P_UPSTREAM=$((PORT_BASE + 1))
declare -A PORT=([haproxy-1]=$((PORT_BASE + 2)) [haproxy-2]=$((PORT_BASE + 3)) [agentward-1]=$((PORT_BASE + 4)) [agentward-2]=$((PORT_BASE + 5)))
declare -A ADMIN_PORT=([agentward-1]=$((PORT_BASE + 14)) [agentward-2]=$((PORT_BASE + 15)))
ports_free "$P_ISSUER" "$P_UPSTREAM" "${PORT[@]}" "${ADMIN_PORT[@]}"
begin_run
log "work dir $WORK; contenders: ${CONTENDERS[*]}"
start_issuer
start_upstream
wait_until 20 upstream answers_http "http://127.0.0.1:$P_UPSTREAM$REQUEST_PATH"

for c in "${CONTENDERS[@]}"; do
  case $c in
    haproxy-*) ;;
    agentward-*)
      agentward_config "$c" "${PORT[$c]}" "${ADMIN_PORT[$c]}" 10000 "" "  dpop:
    mode: disabled"
      printf 'workers: %s\n' "${c#agentward-}" >>"$WORK/$c.yaml"
      ;;
  esac
done

RAW_LINES=()
RESULTS=()
for c in "${CONTENDERS[@]}"; do
  url="http://127.0.0.1:${PORT[$c]}$REQUEST_PATH"
  case $c in
    haproxy-*) start_haproxy "${PORT[$c]}" "${c#haproxy-}"; wait_until 20 haproxy answers_http "$url"; name=haproxy ;;
    agentward-*) start_agentward "$c"; wait_until 60 "$c" http_200 "http://127.0.0.1:${ADMIN_PORT[$c]}/readyz"; name=$c ;;
  esac
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$url")" = 200 ] || die "$c does not answer 200 to the valid token"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 401 ] || die "$c does not answer 401 without a token"
  wait_quiet
  wrk -t2 -c"$CONNECTIONS" -d"${WARMUP}s" -H "Authorization: Bearer $TOKEN" "$url" >/dev/null
  cpu0=$(cpu_ticks "${PID[$name]}")
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency -s bench/report.lua -H "Authorization: Bearer $TOKEN" "$url" >"$WORK/$c.out"
  cpu1=$(cpu_ticks "${PID[$name]}")
  rss=$(rss_kib "${PID[$name]}")
  { echo "===== $c"; cat "$WORK/$c.out"; } >>"$WORK/raw"
  line=$(grep '^RESULT ' "$WORK/$c.out") || die "$c: no result from wrk"
  declare -A r=()
  for kv in ${line#RESULT }; do r[${kv%%=*}]=${kv#*=}; done
  errors=$((r[status_err] + r[connect_err] + r[read_err] + r[write_err] + r[timeouts]))
  RESULTS+=("$(awk -v c="$c" -v n="${r[requests]}" -v d="${r[duration_us]}" -v p50="${r[p50_us]}" -v p99="${r[p99_us]}" -v cpu=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v rss="$rss" -v err="$errors" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.2f | %.0f | %.0f | %d |", c, n / (d / 1e6), p50 / 1000, p99 / 1000, cpu / hz * 1e6 / n, rss / 1024, err }')")
  unset r
  stop "$name" || true
done

STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT=bench/results/$STAMP-workers.md
{
  echo "# Two processes on two cores, $(date -u '+%Y-%m-%d %H:%M') UTC"
  echo
  echo "- command: \`$(command_line "WORKERS|BENCH" bench/workers.sh)\` (agentward $(revision))"
  echo "- machine: $(machine)"
  runtime_note
  echo "- load: wrk, 2 threads, $CONNECTIONS keep-alive connections, ${WARMUP}s warm-up then ${DURATION}s measured, GET $REQUEST_PATH with one valid ES256 token; nothing pinned (contender, upstream and wrk share both CPUs)"
  echo
  echo "| contender | req/s | p50 ms | p99 ms | proxy CPU µs/req | proxy RSS MiB | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${RESULTS[@]}"
} >"$OUT"
cp "$WORK/raw" "bench/results/$STAMP-workers.raw"
cat "$OUT"
log "wrote $OUT"
