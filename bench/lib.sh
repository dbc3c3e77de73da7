# shellcheck shell=bash
# What the load benchmarks share (bench/README.md): bench/run.sh (closed loop, wrk),
# bench/open-loop.sh (constant rate, vegeta) and bench/soak.sh (minutes at one rate, vegeta).
# Sourced, never run:   . bench/lib.sh   (from the repository root, after `set -euo pipefail`)
#
# One setup for all three, so that every tool measures the same processes under the same CPU
# split: the issuer of the ES256 token, the upstream, HAProxy with jwt_verify and agentward with
# the default policy and a hash-chained audit file, each configured here and nowhere else.
#
# The caller sets, before calling what needs them: ROOT (the repository), LOAD_CPU, SERVER_CPU,
# TIME_LIMIT (s), AUDIENCE, the ports it uses (P_ISSUER, P_UPSTREAM, ...), and RAW (the raw result
# file the checks append to). BENCH_NAME is the log prefix (default "bench"). The functions set
# and read these globals: WORK, PID, WATCHDOG, PIN_LOAD, PIN_SERVER, TOKEN, ISSUER, AW_NODE_FLAGS.

log() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }
die() { printf '%s: FAILED: %b\n' "${BENCH_NAME:-bench}" "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Tools. nginx, HAProxy, wrk and curl come from Debian; apt-get update runs only when a package
# has no candidate yet.
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

# ensure_packages COMMAND...: installs the Debian package of each missing command (same name).
ensure_packages() {
  local want=() install=() p
  for p in "$@"; do command -v "$p" >/dev/null || want+=("$p"); done
  [ ${#want[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${want[*]} and no apt-get to install them"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  for p in "${want[@]}"; do
    if ! has_candidate "$p"; then
      log "apt-get update (no candidate for $p yet)"
      "${sudo[@]}" apt-get update -qq
      break
    fi
  done
  for p in "${want[@]}"; do
    if has_candidate "$p"; then install+=("$p")
    elif [ "$p" = wrk ]; then log "wrk is not packaged here; the load generator falls back to autocannon (npx)"
    else die "no Debian package $p"
    fi
  done
  [ ${#install[@]} -eq 0 ] && return 0
  log "apt-get install ${install[*]}"
  # On a systemd machine Debian starts the packages' own services; ours use their own configs
  # and ports and never touch those (containers usually block the start with policy-rc.d).
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${install[@]}" >/dev/null
}

# pin_cpus: the CPU split. The host has 2 cores: the load generator gets one (PIN_LOAD), and the
# upstream plus the contender share the other (PIN_SERVER), so every contender is measured within
# the same one-core budget and its cost shows directly as lost throughput (and in its CPU per
# request). nginx and HAProxy run one worker/thread, like Node's one event loop. With fewer than 2
# cores nothing is pinned.
pin_cpus() {
  if [ "$(nproc)" -ge 2 ]; then
    PIN_LOAD=(taskset -c "$LOAD_CPU")
    PIN_SERVER=(taskset -c "$SERVER_CPU")
  else
    log "fewer than 2 CPUs: nothing is pinned, numbers will be noisier"
    PIN_LOAD=()
    PIN_SERVER=()
  fi
  [ -z "${BENCH_SERVER_QUOTA:-}" ] || server_quota "$BENCH_SERVER_QUOTA"
}

# server_quota PERCENT: the upstream and the contender together get PERCENT of one CPU (a CFS
# quota on a cgroup every PIN_SERVER command joins before it execs), so the server side's capacity
# drops to what one load-generator core can overload twice over (bench/README.md, "Overload": at
# 16,000 req/s vegeta alone fills its core and measures itself). A 10 ms period keeps the
# throttling finer than the latencies measured.
SERVER_CGROUP=
server_quota() {
  local period=10000 name=agentward-bench-$$
  if [ -w /sys/fs/cgroup/cpu ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then # cgroup v1
    SERVER_CGROUP=/sys/fs/cgroup/cpu/$name
    mkdir "$SERVER_CGROUP"
    echo "$period" >"$SERVER_CGROUP/cpu.cfs_period_us"
    echo $((period * $1 / 100)) >"$SERVER_CGROUP/cpu.cfs_quota_us"
  elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then # cgroup v2
    SERVER_CGROUP=/sys/fs/cgroup/$name
    mkdir "$SERVER_CGROUP"
    echo "$((period * $1 / 100)) $period" >"$SERVER_CGROUP/cpu.max"
  else
    die "BENCH_SERVER_QUOTA needs a writable cgroup cpu controller (root, cgroup v1 cpu or v2 with cpu enabled)"
  fi
  PIN_SERVER=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$SERVER_CGROUP" "${PIN_SERVER[@]}")
  log "server side (upstream + contender) limited to $1 % of one CPU ($SERVER_CGROUP)"
}

# ports_free PORT...: refuses to run when anything listens on one of them (PORT_BASE_KNOB names
# the caller's knob to move them, default BENCH_PORT_BASE).
ports_free() {
  local port
  for port in "$@"; do
    # A connect that succeeds means someone else listens there; refuse rather than measure them.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port on 127.0.0.1 is in use (set ${PORT_BASE_KNOB:-BENCH_PORT_BASE})"; fi
  done
}

# ---------------------------------------------------------------------------------------------
# Processes. begin_run makes the work folder and guarantees that every process started with
# `start` is stopped on exit, success or not, and that the whole run ends after TIME_LIMIT.
declare -A PID=()
WATCHDOG=
declare -a AW_NODE_FLAGS=() # extra node flags for agentward (open-loop: --trace-gc; soak: a preload)
# How the container runs Node (Dockerfile: NODE_OPTIONS, and the bundle), so that
# agentward is measured as it ships. V8 would otherwise grow the young generation to 128 MiB at
# these allocation rates (bench/README.md, "Memory").
# BENCH_NODE_FLAGS replaces them (an A/B: BENCH_NODE_FLAGS= runs agentward on Node's defaults).
read -r -a NODE_RUNTIME_FLAGS <<<"${BENCH_NODE_FLAGS---max-semi-space-size=8}"
# The container also preloads jemalloc (Dockerfile): glibc's malloc kept ~20 MiB more resident
# under load (bench/README.md, "Issue 12 where it stands"). BENCH_ALLOCATOR=glibc measures without.
ALLOCATOR=${BENCH_ALLOCATOR:-jemalloc}
NODE_RUNTIME_ENV=()
# And the container has a memory limit (the Helm chart's and the sidecar manifest's
# `limits.memory`, 384Mi), which Node reads (process.constrainedMemory()) to size V8's heap: 259 MiB
# of heap limit in it, against 4,288 MiB on this 24 GiB machine. How far V8 lets the old
# generation grow between full collections depends partly on that limit, so without it a long run
# measures a heap no deployment has (bench/README.md, "one module instead of
# seven hundred"). Each agentward gets a memory cgroup of its own with this limit; BENCH_MEMORY_LIMIT
# (MiB, 384; 0 for none) changes it.
MEMORY_LIMIT_MIB=${BENCH_MEMORY_LIMIT:-384}
MEMORY_CGROUPS=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2>/dev/null || true
  local name pid alive _
  for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
  # Give graceful shutdowns (agentward drains, nginx stops its worker) up to 5 s, then force.
  for _ in $(seq 50); do
    alive=0
    for pid in "${PID[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${PID[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$SERVER_CGROUP" ] || rmdir "$SERVER_CGROUP" 2>/dev/null || true
  for cgroup in "${MEMORY_CGROUPS[@]}"; do rmdir "$cgroup" 2>/dev/null || true; done
  if [ "$status" -eq 0 ]; then rm -rf "$WORK"; else log "logs kept in $WORK"; fi
  exit "$status"
}

begin_run() {
  WORK=$(mktemp -d /tmp/agentward-bench.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # The whole run is bounded: past TIME_LIMIT the script is terminated (and cleans up).
  # (The sleep is its own child so that stopping the watchdog also stops the sleep.)
  (
    sleeper=
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$TIME_LIMIT" &
    sleeper=$!
    wait "$sleeper"
    printf '%s: time limit of %s s reached\n' "${BENCH_NAME:-bench}" "$TIME_LIMIT" >&2
    kill -TERM $$
  ) &
  WATCHDOG=$!
}

# start NAME CMD...: CMD in the background, output to $WORK/NAME.log, pid in PID[NAME].
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
}

# stop NAME: SIGTERM (agentward drains and flushes its audit file), up to 30 s, then SIGKILL.
# Returns the process's exit status; NAME is no longer cleaned up on exit.
stop() {
  local pid=${PID[$1]} status=0 _
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || status=$?
  unset 'PID[$1]'
  return "$status"
}

# wait_until SECONDS NAME CMD...: retry CMD every 0.2 s; fail loudly when NAME exits or time is up.
wait_until() {
  local deadline=$((SECONDS + $1)) name=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited while starting; its log:\n$(tail -n 20 "$WORK/$name.log")"
    [ "$SECONDS" -lt "$deadline" ] || die "$name not ready after ${1}s; its log:\n$(tail -n 20 "$WORK/$name.log")"
    sleep 0.2
  done
}
answers_http() { curl -s -o /dev/null --max-time 2 "$1"; } # any HTTP answer counts
http_200() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ]; }

# start_issuer: bench/issuer.ts on the load CPU (the JWK Set agentward fetches, the valid token in
# TOKEN, the negative ones and the PEM HAProxy reads in $WORK/issuer); ISSUER is its URL.
start_issuer() {
  start issuer "${PIN_LOAD[@]}" node bench/issuer.ts --port "$P_ISSUER" --out "$WORK/issuer" --audience "$AUDIENCE"
  wait_until 20 issuer test -f "$WORK/issuer/ready"
  TOKEN=$(cat "$WORK/issuer/token")
  ISSUER=http://127.0.0.1:$P_ISSUER
}

# start_upstream: bench/upstream.ts on the server CPU, at P_UPSTREAM.
start_upstream() { start upstream "${PIN_SERVER[@]}" node bench/upstream.ts "$P_UPSTREAM"; }

# start_haproxy PORT [THREADS]: HAProxy gating on the JWT, one thread (or THREADS), on the server
# CPU (on every CPU when the run pins nothing).
start_haproxy() {
  # The same checks a JWT gateway config does: alg pinned (no alg confusion), typ at+jwt (RFC
  # 9068), iss and aud exact, the ES256 signature against the issuer's key, exp against the clock,
  # and the scope the default policy requires for a GET. jwt_verify needs the key as a PEM file
  # known at start; HAProxy has no JWKS fetching.
  cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread ${2:-1}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 65s
frontend bench
  bind 127.0.0.1:$1
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny deny_status 401 unless { var(txn.alg) -m str ES256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_header_query('\$.typ') -m str at+jwt }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str $ISSUER }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str $AUDIENCE }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$WORK/issuer/public.pem") -m int 1 }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request deny deny_status 403 unless { var(txn.bearer),jwt_payload_query('\$.scope') -m reg (^|\ )tools\.read(\ |$) }
  default_backend upstream
backend upstream
  server up 127.0.0.1:$P_UPSTREAM maxconn 256
EOF
  haproxy -c -q -f "$WORK/haproxy.cfg" >"$WORK/haproxy-check.log" 2>&1 || die "haproxy rejects its config:\n$(cat "$WORK/haproxy-check.log")"
  start haproxy "${PIN_SERVER[@]}" haproxy -db -f "$WORK/haproxy.cfg"
}

# agentward_config NAME PORT ADMIN_PORT CACHE_SIZE [ISSUER_EXTRA [OAUTH_EXTRA]]: the proxy with the
# default policy, audit to a file (hash-chained, the default), log level warn: what a production
# deployment writes. The extras are YAML lines added to the issuer entry and to oauth;
# AW_LISTEN_EXTRA (environment) holds YAML lines added to listen (e.g. "  maxInFlight: 64").
agentward_config() {
  cat >"$WORK/$1.yaml" <<EOF
listen:
  address: 127.0.0.1:$2
${AW_LISTEN_EXTRA:-}
admin:
  address: 127.0.0.1:$3
upstream:
  url: http://127.0.0.1:$P_UPSTREAM
resource:
  id: $AUDIENCE
oauth:
  issuers:
    - issuer: $ISSUER
      jwksUri: $ISSUER/jwks
      algorithms: [ES256]
${5:-}
  tokenCacheSize: $4
${6:-}
policy:
  source: $ROOT/policies
audit:
  sink: file
  file: $WORK/$1-audit.jsonl
log:
  level: warn
EOF
}

# runtime_env: NODE_RUNTIME_ENV, the environment agentward runs with (LD_PRELOAD of jemalloc, from
# Debian's libjemalloc2, installed when missing); once per run.
runtime_env() {
  [ "$ALLOCATOR" = jemalloc ] || return 0
  [ ${#NODE_RUNTIME_ENV[@]} -eq 0 ] || return 0
  local lib
  lib=$(jemalloc_lib)
  if [ -z "$lib" ]; then
    command -v apt-get >/dev/null || die "jemalloc is missing and there is no apt-get to install it (BENCH_ALLOCATOR=glibc measures without it)"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    has_candidate libjemalloc2 || "${sudo[@]}" apt-get update -qq
    log "apt-get install libjemalloc2"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends libjemalloc2 >/dev/null
    lib=$(jemalloc_lib)
    [ -n "$lib" ] || die "libjemalloc2 installed but libjemalloc.so.2 not found"
  fi
  NODE_RUNTIME_ENV=("LD_PRELOAD=$lib")
}
# jemalloc_lib: the path of libjemalloc.so.2 (Debian's multiarch folder), or nothing.
jemalloc_lib() {
  local lib
  lib=/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2
  [ -f "$lib" ] && echo "$lib"
  return 0
}

# The bundle the container runs (scripts/bundle.ts): src/main.ts and the packages it imports as one
# module, with node_modules beside it for what loads only when configured.
AGENTWARD_BUNDLE=dist/agentward.mjs

# build_dist: bundles src/ to $AGENTWARD_BUNDLE (npm run build:bundle, under a second), what the
# container runs; once per run.
build_dist() {
  [ -z "${DIST_BUILT:-}" ] || return 0
  npm run --silent build:bundle >"$WORK/build-dist.log" 2>&1 || die "npm run build:bundle failed:\n$(tail -n 20 "$WORK/build-dist.log")"
  DIST_BUILT=1
}

# runtime_note: the results line saying how agentward ran (and the bare forwarder: FORWARDER_RUNTIME_NOTE).
FORWARDER_RUNTIME_NOTE="the bare Node forwarder runs with Node's defaults (its fastest: with the flag it measured 67 against 51 µs per request)"
runtime_note() { echo "- agentward runs as the container runs it: \`${NODE_RUNTIME_ENV[*]:+${NODE_RUNTIME_ENV[*]} }node ${NODE_RUNTIME_FLAGS[*]} $AGENTWARD_BUNDLE\` (built by \`npm run build:bundle\`), $(memory_limit_note); $FORWARDER_RUNTIME_NOTE"; }

# memory_cgroup NAME: makes a memory cgroup limited to MEMORY_LIMIT_MIB for the process NAME and
# sets MEMORY_JOIN to the command prefix that moves a process into it before it execs (empty with
# no limit). cgroup v1 (memory.limit_in_bytes) or v2 (memory.max); without a writable one, dies
# rather than measure a heap sized for the whole machine.
MEMORY_JOIN=()
memory_cgroup() {
  MEMORY_JOIN=()
  [ "$MEMORY_LIMIT_MIB" != 0 ] || return 0
  local cgroup bytes=$((MEMORY_LIMIT_MIB * 1024 * 1024))
  # On cgroup v2 a process is in one cgroup only: BENCH_SERVER_QUOTA's (joined after this one)
  # would take it out of this one; v1 keeps the two apart.
  [ -z "$SERVER_CGROUP" ] || [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ] || die "BENCH_SERVER_QUOTA with a memory limit needs cgroup v1 here; set BENCH_MEMORY_LIMIT=0"
  if [ -w /sys/fs/cgroup/memory ] && [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then # cgroup v1
    cgroup=/sys/fs/cgroup/memory/agentward-bench-$$-$1
    mkdir -p "$cgroup" && echo "$bytes" >"$cgroup/memory.limit_in_bytes"
  elif grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null && [ -w /sys/fs/cgroup ]; then # cgroup v2, memory enabled for children
    cgroup=/sys/fs/cgroup/agentward-bench-$$-$1
    mkdir -p "$cgroup" && echo "$bytes" >"$cgroup/memory.max"
  else
    die "agentward is measured in a memory cgroup of ${MEMORY_LIMIT_MIB} MiB, as the container runs it, and no memory cgroup is writable here (root, cgroup v1 memory or v2 with memory enabled); BENCH_MEMORY_LIMIT=0 measures without one"
  fi
  MEMORY_CGROUPS+=("$cgroup")
  MEMORY_JOIN=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgroup")
}

# memory_limit_note: how the result files say it.
memory_limit_note() {
  if [ "$MEMORY_LIMIT_MIB" = 0 ]; then echo "without a memory limit (V8 sizes its heap for the whole machine)"
  else echo "in a memory cgroup of $MEMORY_LIMIT_MIB MiB (the Helm chart's limit; Node sizes V8's heap from it)"; fi
}

# start_node NAME [VAR=VALUE ...] ARGS...: `node ARGS...` as the container runs Node: on the server
# CPU, in a memory cgroup of its own, with NODE_RUNTIME_ENV (and the VAR=VALUE given) and
# NODE_RUNTIME_FLAGS.
start_node() {
  local name=$1
  shift
  runtime_env
  local environment=("${NODE_RUNTIME_ENV[@]}")
  while [[ ${1:-} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    environment+=("$1")
    shift
  done
  memory_cgroup "$name"
  start "$name" "${MEMORY_JOIN[@]}" "${PIN_SERVER[@]}" env "${environment[@]}" node "${NODE_RUNTIME_FLAGS[@]}" "$@"
}

# start_agentward NAME: agentward with $WORK/NAME.yaml (and AW_NODE_FLAGS) as the container runs it:
# the bundle, through start_node.
start_agentward() {
  build_dist
  start_node "$1" "${AW_NODE_FLAGS[@]}" "$AGENTWARD_BUNDLE" serve --config "$WORK/$1.yaml"
}

# start_traced_agentward PROBE_MS: the agentward contender (port P_AW, admin P_AW_ADMIN, token cache
# on) with --trace-gc, one line per collection with its pause (bench/gc-trace.ts), and the preload
# bench/memory-probe.ts, which records the time origin that places those lines on the wall clock
# and the heap every PROBE_MS in AW_MEMORY_PROBE (open-loop.sh, soak.sh).
start_traced_agentward() {
  export AW_MEMORY_PROBE=$WORK/agentward-memory.jsonl AW_MEMORY_PROBE_MS=$1
  AW_NODE_FLAGS=(--trace-gc --import "$ROOT/bench/memory-probe.ts")
  agentward_config agentward "$P_AW" "$P_AW_ADMIN" 10000
  start_agentward agentward
}

# vegeta_attack URL RATE SECONDS TIMEOUT MAX_CONNECTIONS OUT: constant-rate GETs with the valid
# token from the load CPU, results (gob) in OUT. TIMEOUT: seconds before a caller gives up;
# MAX_CONNECTIONS 0: a connection for every request in flight (vegeta's default). -max-body 0:
# bodies are read and dropped, not kept.
vegeta_attack() {
  local cap=()
  [ "$5" -gt 0 ] && cap=(-max-connections "$5")
  printf 'GET %s\n' "$1" >"$WORK/targets"
  timeout $(($3 + $4 + 60)) "${PIN_LOAD[@]}" vegeta attack -targets "$WORK/targets" -rate "$2/1s" -duration "$3s" \
    -timeout "$4s" -max-body 0 -header "Authorization: Bearer $TOKEN" "${cap[@]}" -output "$6"
}

# ---------------------------------------------------------------------------------------------
# Checks: correctness before speed. Each check appends a line to $RAW.

# status_for URL [HEADER...]: the status code of a GET; the body lands in $WORK/last-body.
status_for() {
  local url=$1 headers=() h
  shift
  for h in "$@"; do headers+=(-H "$h"); done
  curl -s -o "$WORK/last-body" -w '%{http_code}' --max-time 5 "${headers[@]}" "$url"
}
# expect CONTENDER WHAT STATUS ERROR_CODE URL [HEADER...]: the answer must have STATUS and, unless
# ERROR_CODE is "-", agentward's error code ERROR_CODE in its body.
expect() {
  local c=$1 what=$2 status=$3 code=$4 got note=
  shift 4
  got=$(status_for "$@")
  [ "$got" = "$status" ] || die "$c answered $got (expected $status) for $what: $(head -c 300 "$WORK/last-body")"
  if [ "$code" != - ]; then
    grep -q "\"code\":\"$code\"" "$WORK/last-body" || die "$c answered $got without $code for $what: $(head -c 300 "$WORK/last-body")"
    note=" $code"
  fi
  echo "check $c $what -> $got$note" >>"$RAW"
}
bearer() { echo "Authorization: Bearer $(cat "$WORK/$1")"; }

# check_valid CONTENDER URL [HEADER...]: 200 with the upstream's body.
check_valid() {
  local c=$1 url=$2 code
  shift 2
  code=$(status_for "$url" "$@")
  [ "$code" = 200 ] && grep -q '"ok":true' "$WORK/last-body" || die "$c answered $code for the valid token: $(head -c 300 "$WORK/last-body")"
  echo "check $c valid-token -> $code" >>"$RAW"
}

# check_token_probes CONTENDER URL: a JWT gate refuses no token, a forged signature, an expired
# token, a wrong audience and a wrong issuer (401), and a token without tools.read (403).
check_token_probes() {
  local c=$1 url=$2 probe token
  for probe in none:401 forged:401 expired:401 wrong-aud:401 wrong-iss:401 no-scope:403; do
    token=${probe%%:*}
    if [ "$token" = none ]; then expect "$c" no-token "${probe##*:}" - "$url"
    else expect "$c" "$token" "${probe##*:}" - "$url" "$(bearer "issuer/$token")"
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# Measuring from /proc.
CLK_TCK=$(getconf CLK_TCK)

# tree_pids PID: the process and its children (nginx's worker).
tree_pids() { echo "$1"; pgrep -P "$1" || true; }
# cpu_ticks PID: user+system CPU of the process tree, all threads (utime, stime of /proc/PID/stat).
cpu_ticks() {
  local total=0 p stat fields
  for p in $(tree_pids "$1"); do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a fields <<<"${stat##*) }" # fields after "(comm) ", starting with the state (field 3)
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
# thread_ticks PID: "main pool v8" CPU ticks of a Node process by thread: the event loop
# (MainThread), libuv's thread pool (libuv-worker: WebCrypto jobs, file writes) and V8's helpers
# (V8Worker: concurrent GC and compilation). Where a contender's CPU per request goes.
thread_ticks() {
  local main=0 pool=0 v8=0 t comm stat fields
  for t in /proc/"$1"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) && stat=$(cat "$t/stat" 2>/dev/null) || continue
    read -r -a fields <<<"${stat##*) }"
    case $comm in
      MainThread) main=$((main + fields[11] + fields[12])) ;;
      libuv-worker) pool=$((pool + fields[11] + fields[12])) ;;
      V8Worker) v8=$((v8 + fields[11] + fields[12])) ;;
    esac
  done
  echo "$main $pool $v8"
}
# rss_kib PID: resident memory of the process tree.
rss_kib() {
  local total=0 p kib
  for p in $(tree_pids "$1"); do
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}

# tcp_counters: "listen_drops syn_retrans" since boot, system-wide (/proc/net/netstat TcpExt): a
# connection attempt dropped from a full accept queue, and a SYN sent again. Each makes that
# caller wait TCP's initial retransmission timeout, 1 s (RFC 6298 §2.1), then 2 s more: a request
# that took ~1 s or ~3 s longer than its neighbours was probably one of these.
tcp_counters() {
  awk '$1 == "TcpExt:" { if (!names) { for (i = 2; i <= NF; i++) col[$i] = i; names = 1 } else print $col["ListenDrops"], $col["TCPSynRetrans"] }' /proc/net/netstat
}

# core_ticks CPU: "busy total" ticks of one CPU from /proc/stat (busy = all but idle and iowait;
# steal counts as busy: time the hypervisor gave to someone else).
core_ticks() { awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }

# This machine may be shared: other work on either CPU shows up as lost req/s and long tails.
# Before each contender, wait (from a bounded budget for the whole run) until both CPUs are
# nearly idle; whatever else ran on the server CPU during the measurement is reported anyway.
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-60}
wait_quiet() {
  [ ${#PIN_SERVER[@]} -gt 0 ] || return 0
  local a0 a1 b0 b1 busy
  while :; do
    read -r -a a0 <<<"$(core_ticks "$SERVER_CPU")"; read -r -a a1 <<<"$(core_ticks "$LOAD_CPU")"
    sleep 1
    read -r -a b0 <<<"$(core_ticks "$SERVER_CPU")"; read -r -a b1 <<<"$(core_ticks "$LOAD_CPU")"
    busy=$(( ((b0[0] - a0[0]) + (b1[0] - a1[0])) * 100 / ((b0[1] - a0[1]) + (b1[1] - a1[1]) + 1) ))
    [ "$busy" -lt 10 ] && return 0
    if [ "$QUIET_BUDGET" -le 0 ]; then log "the CPUs are ${busy}% busy with other work; measuring anyway"; return 0; fi
    log "the CPUs are ${busy}% busy with other work; waiting (${QUIET_BUDGET}s of waiting left)"
    QUIET_BUDGET=$((QUIET_BUDGET - 1))
  done
}

# wait_idle PID SECONDS: waits until the process used under 5 % of a CPU over one second (a
# contender still working off a backlog after an overloaded step), at most SECONDS. Prints the
# seconds waited.
wait_idle() {
  local waited=0 a b
  while [ "$waited" -lt "$2" ]; do
    a=$(cpu_ticks "$1")
    sleep 1
    waited=$((waited + 1))
    b=$(cpu_ticks "$1")
    [ $(( (b - a) * 100 / CLK_TCK )) -lt 5 ] && break
  done
  echo "$waited"
}

# ---------------------------------------------------------------------------------------------
# Reports.

# revision: the commit measured, and whether src/ or policies/ differ from it.
revision() {
  local r
  r=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD -- src policies 2>/dev/null || r="$r (src or policies modified)"
  echo "$r"
}
# machine: "N CPUs (model), X GiB RAM, kernel".
machine() {
  echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
}
# command_line PREFIX SCRIPT: the command as run, with every PREFIX_* variable that was set
# (PREFIX may be an alternation: "BENCH|OPEN").
command_line() { echo "$(env | grep -E "^($1)_" | sort | sed 's/=\(.*\)/="\1" /' | tr -d '\n')bash $2"; }
