#!/usr/bin/env bash
# Two builds of agentward side by side (bench/README.md, "Comparing two builds"): the working
# tree against a base commit, both running at the same time, pinned together with the upstream on
# the server CPU, each driven by its own wrk from the load CPU. Whatever else the shared machine
# does during a pair slows both sides alike, so the ratio of a pair is steadier than that of two
# runs one after the other (which on this machine spread by 10-40 %).
#
#   AB_BASE=HEAD~1 bash bench/ab.sh          # candidate: the working tree, bundled as the container runs it
#
# Environment: AB_BASE (git revision, default HEAD: the same code on both sides measures the
# harness itself), AB_PAIRS (4), AB_DURATION (s per pair, 15), AB_CONNECTIONS (per side, 16),
# AB_TOKEN_CACHE (oauth.tokenCacheSize, 10000; 0 verifies every token), AB_TIME_LIMIT (s, 600),
# AB_CANDIDATE_ENV (VAR=value words for the candidate's process only, after the runtime's own:
# with AB_BASE=HEAD, what a runtime setting costs), AB_CANDIDATE_FLAGS (Node or V8 flags for the
# candidate only, after NODE_RUNTIME_FLAGS: with AB_BASE=HEAD, what a flag costs), BENCH_ALLOCATOR (glibc: both sides without
# the jemalloc preload the container has; bench/lib.sh).
# Each pair swaps which side gets the first port and the first wrk. Results:
# bench/results/<UTC minute>-ab.md (and .raw).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_NAME=ab
. scripts/toolchain.sh
. bench/lib.sh

BASE=${AB_BASE:-HEAD}
PAIRS=${AB_PAIRS:-4}
DURATION=${AB_DURATION:-15}
CONNECTIONS=${AB_CONNECTIONS:-16}
TOKEN_CACHE=${AB_TOKEN_CACHE:-10000}
TIME_LIMIT=${AB_TIME_LIMIT:-600}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
AUDIENCE=https://tools.bench.test
P_ISSUER=18000 P_UPSTREAM=18001 P_A=18005 P_B=18006 P_A_ADMIN=18015 P_B_ADMIN=18016
STAMP=$(date -u +%Y-%m-%d-%H%M)
RESULTS=bench/results/$STAMP-ab.md
RAW=bench/results/$STAMP-ab.raw

ensure_packages wrk curl
git rev-parse --verify --quiet "$BASE^{commit}" >/dev/null || die "AB_BASE $BASE is not a commit"
begin_run
pin_cpus
ports_free $P_ISSUER $P_UPSTREAM $P_A $P_B $P_A_ADMIN $P_B_ADMIN

# The base: its src/ bundled by this checkout's scripts/bundle.ts, against this checkout's
# node_modules (a base whose dependencies differ is not comparable this way). Both sides are
# bundled alike, so a difference is the code's, not the build's.
log "bundling the base ($BASE) and the working tree"
mkdir -p "$WORK/base"
git archive "$BASE" src package.json | tar -x -C "$WORK/base"
ln -s "$ROOT/node_modules" "$WORK/base/node_modules"
node scripts/bundle.ts --entry "$WORK/base/src/main.ts" --outfile "$WORK/base/$AGENTWARD_BUNDLE" >"$WORK/base-build.log" 2>&1 || die "the base does not bundle:\n$(tail -n 20 "$WORK/base-build.log")"
build_dist
runtime_env

start_issuer
start_upstream
wait_until 20 upstream answers_http "http://127.0.0.1:$P_UPSTREAM/"
read -r -a CANDIDATE_ENV <<<"${AB_CANDIDATE_ENV:-}"
read -r -a CANDIDATE_FLAGS <<<"${AB_CANDIDATE_FLAGS:-}"
# start_side NAME PORT ADMIN DIR: one agentward (the bench config) from DIR's bundle.
start_side() {
  local environment=() flags=()
  [ "$1" = cand ] && environment=("${CANDIDATE_ENV[@]}") flags=("${CANDIDATE_FLAGS[@]}")
  agentward_config "$1" "$2" "$3" "$TOKEN_CACHE"
  start_node "$1" "${environment[@]}" "${flags[@]}" "$4/$AGENTWARD_BUNDLE" serve --config "$WORK/$1.yaml"
}
# wrk_side PORT OUT: one closed-loop run against PORT, its RESULT line in OUT.
wrk_side() {
  "${PIN_LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/report.lua -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/api/items" >"$2" 2>&1
}
field() { grep '^RESULT ' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

{
  echo "# agentward A/B, $(date -u '+%Y-%m-%d %H:%M') UTC"
  echo
  echo "- command: \`$(command_line AB bench/ab.sh)\`"
  echo "- base: $(git rev-parse --short "$BASE") ($BASE); candidate: the working tree, $(revision)${AB_CANDIDATE_ENV:+, with \`$AB_CANDIDATE_ENV\` in its environment}${AB_CANDIDATE_FLAGS:+, with the Node flags \`$AB_CANDIDATE_FLAGS\`}"
  echo "- machine: $(machine); node $(node --version)"
  echo "- both run \`${NODE_RUNTIME_ENV[*]:+${NODE_RUNTIME_ENV[*]} }node ${NODE_RUNTIME_FLAGS[*]} $AGENTWARD_BUNDLE\` at the same time with the bench config (token cache $TOKEN_CACHE), each $(memory_limit_note), pinned with the upstream to CPU $SERVER_CPU; each has its own \`wrk -t1 -c$CONNECTIONS -d${DURATION}s\` on CPU $LOAD_CPU"
  echo
  echo "| pair | base req/s | candidate req/s | ratio | base µs/req | candidate µs/req | base p99 ms | candidate p99 ms | base RSS MiB | candidate RSS MiB |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$RESULTS"

ratios=()
for pair in $(seq "$PAIRS"); do
  # Odd pairs give the base the first port and the first wrk, even pairs the candidate.
  if [ $((pair % 2)) -eq 1 ]; then first=base; else first=cand; fi
  for side in base cand; do
    if [ "$side" = "$first" ]; then port=$P_A admin=$P_A_ADMIN; else port=$P_B admin=$P_B_ADMIN; fi
    dir=$ROOT; [ "$side" = base ] && dir=$WORK/base
    start_side "$side" "$port" "$admin" "$dir"
    eval "PORT_$side=$port ADMIN_$side=$admin"
  done
  for side in base cand; do
    admin_var=ADMIN_$side
    wait_until 30 "$side" http_200 "http://127.0.0.1:${!admin_var}/readyz"
  done
  wait_quiet
  # A short warm-up of both (JIT, pools, the token cache), then the measured pair.
  pids=()
  for side in base cand; do
    port_var=PORT_$side
    "${PIN_LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d3s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${!port_var}/api/items" >/dev/null 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  declare -A t0=()
  for side in base cand; do t0[$side]=$(cpu_ticks "${PID[$side]}"); done
  pids=()
  for side in $first $([ "$first" = base ] && echo cand || echo base); do
    port_var=PORT_$side
    wrk_side "${!port_var}" "$WORK/$side.out" &
    pids+=($!)
  done
  wait "${pids[@]}"
  declare -A rps=() us=() p99=() rss=()
  for side in base cand; do
    ticks=$(( $(cpu_ticks "${PID[$side]}") - t0[$side] ))
    requests=$(field "$WORK/$side.out" requests)
    [ -n "$requests" ] || die "$side: no result from wrk:\n$(cat "$WORK/$side.out")"
    [ "$(field "$WORK/$side.out" status_err)" = 0 ] || die "$side answered with errors:\n$(cat "$WORK/$side.out")"
    rps[$side]=$(awk -v r="$requests" -v d="$(field "$WORK/$side.out" duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    us[$side]=$(awk -v t="$ticks" -v r="$requests" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
    p99[$side]=$(awk -v v="$(field "$WORK/$side.out" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')
    rss[$side]=$(( $(rss_kib "${PID[$side]}") / 1024 ))
    { echo "===== pair $pair $side"; cat "$WORK/$side.out"; } >>"$RAW"
  done
  ratio=$(awk -v a="${rps[base]}" -v b="${rps[cand]}" 'BEGIN { printf "%.3f", b / a }')
  ratios+=("$ratio")
  echo "| $pair | ${rps[base]} | ${rps[cand]} | $ratio | ${us[base]} | ${us[cand]} | ${p99[base]} | ${p99[cand]} | ${rss[base]} | ${rss[cand]} |" >>"$RESULTS"
  log "pair $pair: base ${rps[base]} req/s (${us[base]} µs/req), candidate ${rps[cand]} req/s (${us[cand]} µs/req): ratio $ratio"
  for side in base cand; do stop "$side" || true; done
done

{
  echo
  echo "Candidate/base req/s per pair: ${ratios[*]}; median $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')."
  echo "µs/req: user+system CPU of the process during the measured run over the requests it served."
} >>"$RESULTS"
cat "$RESULTS"
log "wrote $RESULTS and $RAW"
