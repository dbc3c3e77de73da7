#!/usr/bin/env bash
# The load benchmark (bench/README.md): the same closed-loop load, one contender at a time,
#   direct             the upstream alone (the ceiling)
#   forwarder          bench/forwarder.ts: node:http + undici, no auth (the floor for a Node proxy)
#   nginx              nginx reverse proxy with a keep-alive upstream pool, no auth
#   haproxy            HAProxy gating on the same JWT (jwt_verify ES256 + alg/typ/iss/aud/exp/scope)
#   agentward          agentward: RFC 9068 verification, the default Rego policy, file audit
#   agentward-nocache  the same with oauth.tokenCacheSize 0: a signature check on every request
#   agentward-dpop     agentward with a DPoP-bound token (cnf.jkt) and a fresh DPoP proof per request
#                      (bench/dpop-proofs.ts writes them just before the run, bench/proofs.lua sends them)
#   agentward-wpt      agentward authenticating the agent alone by WIMSE WIT + WPT (a fresh WPT per
#                      request, bench/wimse.ts), a SPIFFE bundle file, bench/policies/workload
#   agentward-mcp-call agentward on an MCP path: a JSON-RPC tools/call POST, inspected and decided
#                      per tool (bench/mcp.lua, bench/policies/mcp)
#   agentward-mcp-list the same with tools/list: the upstream's 100 tools are filtered to 50
#   agentward-mcp-list-nofilter
#                      tools/list with mcp.filterLists false: the cost of filtering, by difference
#   agentward-introspection
#                      agentward with an opaque token, introspected (RFC 7662) at bench/introspection.ts;
#                      the answer cached (default cacheTtl 60s): the steady state of a repeated token
#   agentward-introspection-nocache
#                      the same with introspection cacheSize 0 and a new token on every request
#                      (bench/opaque.lua): one introspection round trip per request
# and writes req/s, p50/p99 latency, CPU per request and RSS to bench/results/<stamp>.md
# (raw tool output to bench/results/<stamp>.raw, gitignored).
#
#   bash bench/run.sh            (scripts/run bench does the same after bootstrapping Node and opa)
#
# Knobs (environment): BENCH_DURATION (s, default 15), BENCH_WARMUP (s, 3), BENCH_CONNECTIONS (32),
# BENCH_LOAD_CPU (1), BENCH_SERVER_CPU (0), BENCH_PORT_BASE (18000), BENCH_ONLY ("nginx haproxy"),
# BENCH_LOADGEN (wrk|autocannon; default wrk when installed), BENCH_QUIET_BUDGET (s, 60),
# BENCH_TIME_LIMIT (s, 420), BENCH_DPOP_MAX_RPS (3000: proofs written per second of load),
# BENCH_INTROSPECTION_CACHE_TTL (agentward's default, 60s), BENCH_OPAQUE_TOKENS (unique: a new token
# per request in agentward-introspection-nocache; one: the same token, which single flight shares).
#
# Only 127.0.0.1 is ever targeted. Every process started here is stopped on exit, success or not.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$PATH:/usr/sbin:/sbin" # nginx and haproxy live in sbin, absent from a user's PATH

DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
PORT_BASE=${BENCH_PORT_BASE:-18000}
TIME_LIMIT=${BENCH_TIME_LIMIT:-420}
# More proofs than agentward-dpop can use at this rate (it serves ~1000 req/s here); a run that
# runs out fails (bench/proofs.lua sends the surplus requests without a proof: 401). The same rate
# sizes the WPT files of agentward-wpt.
DPOP_MAX_RPS=${BENCH_DPOP_MAX_RPS:-3000}
INTROSPECTION_CACHE_TTL=${BENCH_INTROSPECTION_CACHE_TTL:-}
OPAQUE_TOKENS=${BENCH_OPAQUE_TOKENS:-unique}
[ "$OPAQUE_TOKENS" = unique ] || [ "$OPAQUE_TOKENS" = one ] || { echo "bench: BENCH_OPAQUE_TOKENS is unique or one" >&2; exit 2; }
ALL_CONTENDERS=(direct forwarder nginx haproxy agentward agentward-nocache agentward-dpop agentward-wpt agentward-mcp-call agentward-mcp-list agentward-mcp-list-nofilter agentward-introspection agentward-introspection-nocache)
read -r -a CONTENDERS <<<"${BENCH_ONLY:-${ALL_CONTENDERS[*]}}"
REQUEST_PATH=/api/items
AUDIENCE=https://tools.bench.test
# RFC 9449 §4.3 step 9: agentward compares htu with the resource origin (resource.id's) + path.
DPOP_HTU=$AUDIENCE$REQUEST_PATH
# agentward's client id at the introspection endpoint.
INTROSPECTION_CLIENT=bench-rs

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: FAILED: %b\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Tools. Node and opa come from the repo's pinned toolchain (instant when cached); nginx,
# HAProxy and wrk from Debian. apt-get update runs only when a package has no candidate yet.
. scripts/toolchain.sh

has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

ensure_packages() {
  local want=() install=() p
  command -v nginx >/dev/null || want+=(nginx)
  command -v haproxy >/dev/null || want+=(haproxy)
  command -v wrk >/dev/null || want+=(wrk)
  command -v curl >/dev/null || want+=(curl)
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
ensure_packages

LOADGEN=${BENCH_LOADGEN:-$(command -v wrk >/dev/null && echo wrk || echo autocannon)}
if [ "$LOADGEN" != wrk ] && [[ " ${CONTENDERS[*]} " == *" agentward-dpop "* || " ${CONTENDERS[*]} " == *" agentward-wpt "* || " ${CONTENDERS[*]} " == *" agentward-mcp"* || " ${CONTENDERS[*]} " == *" agentward-introspection-nocache "* ]]; then
  die "agentward-dpop, agentward-wpt, the agentward-mcp contenders and agentward-introspection-nocache need wrk (Lua scripts)"
fi

# CPU split. The host has 2 cores: the load generator gets one, and the upstream plus the
# contender share the other, so every contender is measured within the same one-core budget and
# its cost shows directly as lost throughput (and in its CPU per request). nginx and HAProxy run
# one worker/thread, like Node's one event loop. With fewer than 2 cores nothing is pinned.
if [ "$(nproc)" -ge 2 ]; then
  PIN_LOAD=(taskset -c "$LOAD_CPU")
  PIN_SERVER=(taskset -c "$SERVER_CPU")
else
  log "fewer than 2 CPUs: nothing is pinned, numbers will be noisier"
  PIN_LOAD=()
  PIN_SERVER=()
fi

# ---------------------------------------------------------------------------------------------
# Ports and processes.
P_ISSUER=$PORT_BASE
P_UPSTREAM=$((PORT_BASE + 1))
P_FORWARDER=$((PORT_BASE + 2))
P_NGINX=$((PORT_BASE + 3))
P_HAPROXY=$((PORT_BASE + 4))
P_AW=$((PORT_BASE + 5))
P_AW_NOCACHE=$((PORT_BASE + 6))
P_AW_DPOP=$((PORT_BASE + 7))
P_AW_INTRO=$((PORT_BASE + 8))
P_AW_INTRO_NOCACHE=$((PORT_BASE + 9))
P_INTROSPECTION=$((PORT_BASE + 10))
P_AW_WPT=$((PORT_BASE + 11))
P_AW_MCP=$((PORT_BASE + 12))
P_AW_MCP_NOFILTER=$((PORT_BASE + 13))
P_AW_ADMIN=$((PORT_BASE + 15))
P_AW_NOCACHE_ADMIN=$((PORT_BASE + 16))
P_AW_DPOP_ADMIN=$((PORT_BASE + 17))
P_AW_INTRO_ADMIN=$((PORT_BASE + 18))
P_AW_INTRO_NOCACHE_ADMIN=$((PORT_BASE + 19))
P_AW_WPT_ADMIN=$((PORT_BASE + 20))
P_AW_MCP_ADMIN=$((PORT_BASE + 21))
P_AW_MCP_NOFILTER_ADMIN=$((PORT_BASE + 22))
for port in "$P_ISSUER" "$P_UPSTREAM" "$P_FORWARDER" "$P_NGINX" "$P_HAPROXY" "$P_AW" "$P_AW_NOCACHE" "$P_AW_DPOP" "$P_AW_INTRO" "$P_AW_INTRO_NOCACHE" \
  "$P_INTROSPECTION" "$P_AW_ADMIN" "$P_AW_NOCACHE_ADMIN" "$P_AW_DPOP_ADMIN" "$P_AW_INTRO_ADMIN" "$P_AW_INTRO_NOCACHE_ADMIN" "$P_AW_WPT" "$P_AW_WPT_ADMIN" \
  "$P_AW_MCP" "$P_AW_MCP_ADMIN" "$P_AW_MCP_NOFILTER" "$P_AW_MCP_NOFILTER_ADMIN"; do
  # A connect that succeeds means someone else listens there; refuse rather than measure them.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port on 127.0.0.1 is in use (set BENCH_PORT_BASE)"; fi
done

WORK=$(mktemp -d /tmp/agentward-bench.XXXXXX)
declare -A PID=()
WATCHDOG=

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
  if [ "$status" -eq 0 ]; then rm -rf "$WORK"; else log "logs kept in $WORK"; fi
  exit "$status"
}
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
  printf 'bench: time limit of %s s reached\n' "$TIME_LIMIT" >&2
  kill -TERM $$
) &
WATCHDOG=$!

# start NAME CMD...: CMD in the background, output to $WORK/NAME.log, pid in PID[NAME].
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
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

# ---------------------------------------------------------------------------------------------
# Issuer (JWK Set + tokens) and upstream.
log "work dir $WORK; load generator $LOADGEN; contenders: ${CONTENDERS[*]}"
start issuer "${PIN_LOAD[@]}" node bench/issuer.ts --port "$P_ISSUER" --out "$WORK/issuer" --audience "$AUDIENCE"
wait_until 20 issuer test -f "$WORK/issuer/ready"
TOKEN=$(cat "$WORK/issuer/token")
ISSUER=http://127.0.0.1:$P_ISSUER

start upstream "${PIN_SERVER[@]}" node bench/upstream.ts "$P_UPSTREAM"

want() { [[ " ${CONTENDERS[*]} " == *" $1 "* ]]; }

# The introspection endpoint stands for an authorization server on another machine, so it runs
# beside the load generator, not on the server CPU: agentward's share of a round trip is charged
# to agentward, the endpoint's own work is reported apart (introspection CPU µs/call).
INTROSPECTION=http://127.0.0.1:$P_INTROSPECTION
if want agentward-introspection || want agentward-introspection-nocache; then
  start introspection "${PIN_LOAD[@]}" node bench/introspection.ts --port "$P_INTROSPECTION" --out "$WORK/introspection" \
    --issuer "$ISSUER" --audience "$AUDIENCE" --client-id "$INTROSPECTION_CLIENT"
  wait_until 20 introspection test -f "$WORK/introspection/ready"
fi

# ---------------------------------------------------------------------------------------------
# Contenders. Each config is written here so the file in bench/ is the whole truth.

if want forwarder; then
  start forwarder "${PIN_SERVER[@]}" node bench/forwarder.ts "$P_FORWARDER" "http://127.0.0.1:$P_UPSTREAM"
fi

if want nginx; then
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/client_body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_timeout 65s;
  # The default (1000) would make every wrk connection reconnect after 1000 requests.
  keepalive_requests 1000000;
  upstream bench_upstream {
    server 127.0.0.1:$P_UPSTREAM;
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  nginx -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" || die "nginx rejects its config: $(cat "$WORK/nginx/error.log")"
  start nginx "${PIN_SERVER[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
fi

if want haproxy; then
  # The same checks a JWT gateway config does: alg pinned (no alg confusion), typ at+jwt (RFC
  # 9068), iss and aud exact, the ES256 signature against the issuer's key, exp against the clock,
  # and the scope the default policy requires for a GET. jwt_verify needs the key as a PEM file
  # known at start; HAProxy has no JWKS fetching.
  cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 65s
frontend bench
  bind 127.0.0.1:$P_HAPROXY
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
fi

# agentward_config NAME PORT ADMIN_PORT CACHE_SIZE [ISSUER_EXTRA [OAUTH_EXTRA]]: the proxy with the
# default policy, audit to a file (hash-chained, the default), log level warn: what a production
# deployment writes. The extras are YAML lines added to the issuer entry and to oauth.
agentward_config() {
  cat >"$WORK/$1.yaml" <<EOF
listen:
  address: 127.0.0.1:$2
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
if want agentward; then
  agentward_config agentward "$P_AW" "$P_AW_ADMIN" 10000
  start agentward "${PIN_SERVER[@]}" node src/main.ts serve --config "$WORK/agentward.yaml"
fi
if want agentward-nocache; then
  agentward_config agentward-nocache "$P_AW_NOCACHE" "$P_AW_NOCACHE_ADMIN" 0
  start agentward-nocache "${PIN_SERVER[@]}" node src/main.ts serve --config "$WORK/agentward-nocache.yaml"
fi
if want agentward-dpop; then
  # DPoP in its default mode (allowed) with every default but maxAge: the proofs are written a
  # few seconds before the warm-up and must still be accepted at the end of the measured run
  # (iat within maxAge + oauth.clockSkew, 30s), so 120s rather than 60s. Nothing else changes:
  # a proof is checked in full either way, and its id is remembered for maxAge + 2 x clockSkew.
  agentward_config agentward-dpop "$P_AW_DPOP" "$P_AW_DPOP_ADMIN" 10000 "" "  dpop:
    maxAge: 120s"
  start agentward-dpop "${PIN_SERVER[@]}" node src/main.ts serve --config "$WORK/agentward-dpop.yaml"
fi
if want agentward-wpt; then
  # The agent alone authenticates (WIT + WPT in Authorization, so no access token can come along:
  # oauth.requireToken false), with a bundle file for its trust domain and a policy on input.agent
  # (the default policy refuses requests without an access token). Everything else default:
  # wimse.maxProofLifetime 5m, the replay cache, audit and log as for the others.
  "${PIN_LOAD[@]}" node bench/wimse.ts init --out "$WORK/wimse"
  mkdir -p "$WORK/wpt-policy"
  cp -r "$ROOT/policies/lib" "$ROOT/bench/policies/workload/policy.rego" "$WORK/wpt-policy/"
  agentward_config agentward-wpt "$P_AW_WPT" "$P_AW_WPT_ADMIN" 10000 "" "  requireToken: false"
  sed -i "s|source: $ROOT/policies|source: $WORK/wpt-policy|" "$WORK/agentward-wpt.yaml"
  cat >>"$WORK/agentward-wpt.yaml" <<EOF
workload:
  trustDomains:
    - name: agents.bench.test
      bundle: { file: $WORK/wimse/bundle.json }
EOF
  start agentward-wpt "${PIN_SERVER[@]}" node src/main.ts serve --config "$WORK/agentward-wpt.yaml"
fi
# The MCP contenders: one agentward (mcp-call and mcp-list share it: different paths) with list
# filtering on, and one with it off. Policy bench/policies/mcp (allows tool-0 .. tool-49).
# mcp_agentward NAME PORT ADMIN FILTER
mcp_agentward() {
  agentward_config "$1" "$2" "$3" 10000
  sed -i "s|source: $ROOT/policies|source: $ROOT/bench/policies/mcp|" "$WORK/$1.yaml"
  cat >>"$WORK/$1.yaml" <<EOF
mcp:
  paths: [/mcp, /mcp-list]
  filterLists: $4
EOF
  start "$1" "${PIN_SERVER[@]}" node src/main.ts serve --config "$WORK/$1.yaml"
}
if want agentward-mcp-call || want agentward-mcp-list; then mcp_agentward agentward-mcp "$P_AW_MCP" "$P_AW_MCP_ADMIN" true; fi
if want agentward-mcp-list-nofilter; then mcp_agentward agentward-mcp-nofilter "$P_AW_MCP_NOFILTER" "$P_AW_MCP_NOFILTER_ADMIN" false; fi
MCP_CALL_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tool-7","arguments":{"q":"bench"}}}'
MCP_LIST_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
# introspection_yaml CACHE_SIZE: the issuer's RFC 7662 settings (cacheTtl and the rest default
# unless BENCH_INTROSPECTION_CACHE_TTL is set).
introspection_yaml() {
  cat <<EOF
      introspection:
        endpoint: $INTROSPECTION/introspect
        clientId: $INTROSPECTION_CLIENT
        clientSecret: { fromFile: $WORK/introspection/client-secret }
        cacheSize: $1
EOF
  [ -z "$INTROSPECTION_CACHE_TTL" ] || echo "        cacheTtl: $INTROSPECTION_CACHE_TTL"
}
if want agentward-introspection; then
  agentward_config agentward-introspection "$P_AW_INTRO" "$P_AW_INTRO_ADMIN" 10000 "$(introspection_yaml 10000)"
  start agentward-introspection "${PIN_SERVER[@]}" node src/main.ts serve --config "$WORK/agentward-introspection.yaml"
fi
if want agentward-introspection-nocache; then
  agentward_config agentward-introspection-nocache "$P_AW_INTRO_NOCACHE" "$P_AW_INTRO_NOCACHE_ADMIN" 10000 "$(introspection_yaml 0)"
  start agentward-introspection-nocache "${PIN_SERVER[@]}" node src/main.ts serve --config "$WORK/agentward-introspection-nocache.yaml"
fi

declare -A URL=(
  [direct]="http://127.0.0.1:$P_UPSTREAM$REQUEST_PATH"
  [forwarder]="http://127.0.0.1:$P_FORWARDER$REQUEST_PATH"
  [nginx]="http://127.0.0.1:$P_NGINX$REQUEST_PATH"
  [haproxy]="http://127.0.0.1:$P_HAPROXY$REQUEST_PATH"
  [agentward]="http://127.0.0.1:$P_AW$REQUEST_PATH"
  [agentward-nocache]="http://127.0.0.1:$P_AW_NOCACHE$REQUEST_PATH"
  [agentward-dpop]="http://127.0.0.1:$P_AW_DPOP$REQUEST_PATH"
  [agentward-wpt]="http://127.0.0.1:$P_AW_WPT$REQUEST_PATH"
  [agentward-mcp-call]="http://127.0.0.1:$P_AW_MCP/mcp"
  [agentward-mcp-list]="http://127.0.0.1:$P_AW_MCP/mcp-list"
  [agentward-mcp-list-nofilter]="http://127.0.0.1:$P_AW_MCP_NOFILTER/mcp-list"
  [agentward-introspection]="http://127.0.0.1:$P_AW_INTRO$REQUEST_PATH"
  [agentward-introspection-nocache]="http://127.0.0.1:$P_AW_INTRO_NOCACHE$REQUEST_PATH"
)
declare -A ADMIN=(
  [agentward]=$P_AW_ADMIN [agentward-nocache]=$P_AW_NOCACHE_ADMIN [agentward-dpop]=$P_AW_DPOP_ADMIN
  [agentward-introspection]=$P_AW_INTRO_ADMIN [agentward-introspection-nocache]=$P_AW_INTRO_NOCACHE_ADMIN
  [agentward-wpt]=$P_AW_WPT_ADMIN
  [agentward-mcp-call]=$P_AW_MCP_ADMIN [agentward-mcp-list]=$P_AW_MCP_ADMIN [agentward-mcp-list-nofilter]=$P_AW_MCP_NOFILTER_ADMIN
)
# The process whose CPU and memory are the contender's cost (the upstream for "direct").
declare -A PROC=([direct]=upstream [forwarder]=forwarder [nginx]=nginx [haproxy]=haproxy)
for c in "${!ADMIN[@]}"; do PROC[$c]=$c; done
PROC[agentward-mcp-call]=agentward-mcp
PROC[agentward-mcp-list]=agentward-mcp
PROC[agentward-mcp-list-nofilter]=agentward-mcp-nofilter
declare -A LABEL=(
  [direct]="upstream direct"
  [forwarder]="Node forwarder (undici, no auth)"
  [nginx]="nginx proxy (no auth)"
  [haproxy]="HAProxy + jwt_verify"
  [agentward]="agentward (JWT + policy)"
  [agentward-nocache]="agentward, token cache off"
  [agentward-dpop]="agentward, JWT + DPoP proof"
  [agentward-wpt]="agentward, WIT + WPT (no token)"
  [agentward-mcp-call]="agentward, MCP tools/call (JWT)"
  [agentward-mcp-list]="agentward, MCP tools/list, 100 tools filtered to 50"
  [agentward-mcp-list-nofilter]="agentward, MCP tools/list, 100 tools, filterLists off"
  [agentward-introspection]="agentward, opaque token, introspection cached"
  [agentward-introspection-nocache]="agentward, opaque token, introspected every request"
)
[ "$OPAQUE_TOKENS" = unique ] || LABEL[agentward-introspection-nocache]="agentward, one opaque token, introspection cacheSize 0"

wait_until 20 upstream answers_http "${URL[direct]}"
for c in "${CONTENDERS[@]}"; do
  case $c in
    agentward*) wait_until 90 "${PROC[$c]}" http_200 "http://127.0.0.1:${ADMIN[$c]}/readyz" ;;
    direct) ;;
    *) wait_until 20 "${PROC[$c]}" answers_http "${URL[$c]}" ;;
  esac
done

# ---------------------------------------------------------------------------------------------
# Correctness before speed: every contender answers 200 with the upstream's body for the valid
# token, and the gating ones refuse each bad token for the reason they claim to check.
STAMP=$(date -u +%Y-%m-%d-%H%M)
mkdir -p bench/results
RAW=bench/results/$STAMP.raw
RESULTS=bench/results/$STAMP.md
: >"$RAW"

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
# wpts OUT COUNT [AUD]: COUNT fresh WPTs for the agent's WIT, one per line.
wpts() { "${PIN_LOAD[@]}" node bench/wimse.ts proofs --dir "$WORK/wimse" --aud "${3:-$DPOP_HTU}" --count "$2" --out "$1"; }
WIT=
if want agentward-wpt; then WIT=$(cat "$WORK/wimse/wit"); fi
DPOP_TOKEN=$(cat "$WORK/issuer/dpop-token")
# proofs OUT COUNT [IAT_OFFSET [HTU]]: COUNT fresh DPoP proofs for the bound token, one per line.
proofs() {
  "${PIN_LOAD[@]}" node bench/dpop-proofs.ts --key "$WORK/issuer/dpop-key.json" --token-file "$WORK/issuer/dpop-token" \
    --htu "${4:-$DPOP_HTU}" --count "$2" --iat-offset="${3:-0}" --out "$1"
}
for c in "${CONTENDERS[@]}"; do
  url=${URL[$c]}
  case $c in
    agentward-dpop)
      proofs "$WORK/check-proofs" 2
      valid=("Authorization: DPoP $DPOP_TOKEN" "DPoP: $(sed -n 1p "$WORK/check-proofs")")
      ;;
    agentward-wpt)
      wpts "$WORK/check-wpts" 2
      valid=("Workload-Identity-Token: $WIT" "Authorization: WPT $(sed -n 1p "$WORK/check-wpts")")
      ;;
    agentward-introspection) valid=("$(bearer introspection/opaque)") ;;
    agentward-introspection-nocache) valid=("Authorization: Bearer $(cat "$WORK/introspection/unique-prefix")check") ;;
    *) valid=("$(bearer issuer/token)") ;;
  esac
  case $c in
    agentward-mcp*)
      # JSON-RPC over POST: an allowed call answers its result; a list shows 50 of 100 tools when
      # filtered, all 100 when not; a denied tool is a JSON-RPC error (-32003), HTTP 200.
      mcp_post() { curl -s -o "$WORK/last-body" -w '%{http_code}' --max-time 5 -H "$(bearer issuer/token)" -H 'content-type: application/json' -d "$2" "$1"; }
      if [ "$c" = agentward-mcp-call ]; then
        code=$(mcp_post "$url" "$MCP_CALL_BODY")
        [ "$code" = 200 ] && grep -q '"result"' "$WORK/last-body" || die "$c answered $code for an allowed tools/call: $(head -c 300 "$WORK/last-body")"
        code=$(mcp_post "$url" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tool-99"}}')
        [ "$code" = 200 ] && grep -q '"code":-32003' "$WORK/last-body" || die "$c answered $code without -32003 for a denied tool: $(head -c 300 "$WORK/last-body")"
        echo "check $c denied-tool -> $code -32003" >>"$RAW"
      else
        code=$(mcp_post "$url" "$MCP_LIST_BODY")
        shown=$(grep -o '"name":"tool-[0-9]*"' "$WORK/last-body" | wc -l)
        want_shown=50
        [ "$c" = agentward-mcp-list-nofilter ] && want_shown=100
        [ "$code" = 200 ] && [ "$shown" = "$want_shown" ] && grep -q '"nextCursor":"page-2"' "$WORK/last-body" || die "$c answered $code with $shown tools (expected $want_shown and the cursor)"
        echo "check $c tools-shown -> $shown" >>"$RAW"
      fi
      echo "check $c valid-token -> $code" >>"$RAW"
      expect "$c" no-token 401 - "$url"
      expect "$c" forged 401 - "$url" "$(bearer issuer/forged)"
      continue
      ;;
  esac
  code=$(status_for "$url" "${valid[@]}")
  [ "$code" = 200 ] && grep -q '"ok":true' "$WORK/last-body" || die "$c answered $code for the valid token: $(head -c 300 "$WORK/last-body")"
  echo "check $c valid-token -> $code" >>"$RAW"
  case $c in haproxy | agentward*) ;; *) continue ;; esac
  for probe in none:401 forged:401 expired:401 wrong-aud:401 wrong-iss:401 no-scope:403; do
    token=${probe%%:*}
    if [ "$token" = none ]; then expect "$c" no-token "${probe##*:}" - "$url"
    else expect "$c" "$token" "${probe##*:}" - "$url" "$(bearer "issuer/$token")"
    fi
  done
  case $c in
    agentward-dpop)
      # A proof is single-use, bound to the token (ath), to this URI (htu) and recent (iat); a
      # bound token needs its proof.
      expect "$c" replayed-proof 401 ERR_DPOP_REPLAYED "$url" "${valid[@]}"
      expect "$c" proof-for-another-token 401 ERR_DPOP_PROOF_ATH "$url" "Authorization: DPoP $(cat "$WORK/issuer/token")" "DPoP: $(sed -n 2p "$WORK/check-proofs")"
      expect "$c" bound-token-as-bearer 401 ERR_DPOP_BOUND_TOKEN_AS_BEARER "$url" "$(bearer issuer/dpop-token)"
      proofs "$WORK/check-stale" 1 -300
      expect "$c" stale-proof 401 ERR_DPOP_PROOF_EXPIRED "$url" "Authorization: DPoP $DPOP_TOKEN" "DPoP: $(cat "$WORK/check-stale")"
      proofs "$WORK/check-htu" 1 0 "https://other.bench.test$REQUEST_PATH"
      expect "$c" proof-for-another-uri 401 ERR_DPOP_PROOF_URI "$url" "Authorization: DPoP $DPOP_TOKEN" "DPoP: $(cat "$WORK/check-htu")"
      ;;
    agentward-wpt)
      # A WPT is single-use and for this resource; a WIT needs a proof and the trust domain's key.
      expect "$c" replayed-wpt 401 ERR_WPT_REPLAYED "$url" "${valid[@]}"
      expect "$c" wit-without-proof 401 ERR_WIT_NO_PROOF "$url" "Workload-Identity-Token: $WIT"
      expect "$c" forged-wit 401 ERR_WIT_SIGNATURE "$url" "Workload-Identity-Token: $(cat "$WORK/wimse/wit-forged")" "Authorization: WPT $(sed -n 2p "$WORK/check-wpts")"
      wpts "$WORK/check-aud" 1 "https://other.bench.test$REQUEST_PATH"
      expect "$c" wpt-for-another-resource 401 ERR_WPT_AUDIENCE "$url" "Workload-Identity-Token: $WIT" "Authorization: WPT $(cat "$WORK/check-aud")"
      ;;
    agentward-introspection*)
      expect "$c" opaque-inactive 401 ERR_TOKEN_INACTIVE "$url" "$(bearer introspection/opaque-inactive)"
      expect "$c" opaque-wrong-aud 401 ERR_TOKEN_AUDIENCE "$url" "$(bearer introspection/opaque-wrong-aud)"
      expect "$c" opaque-no-scope 403 - "$url" "$(bearer introspection/opaque-no-scope)"
      ;;
  esac
done
log "checks passed: every contender answers 200; haproxy and agentward refuse forged, expired, wrong-aud, wrong-iss, no-scope and missing tokens; agentward-dpop replayed, stale, misdirected and missing proofs; agentward-wpt replayed, missing and misdirected WPTs and forged WITs; agentward-introspection inactive, wrong-aud and no-scope opaque tokens"

# ---------------------------------------------------------------------------------------------
# Load.
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

# load CONTENDER SECONDS OUT PHASE: one closed-loop run from the load core; leaves a RESULT line in
# OUT. PHASE (warmup or run) picks the DPoP proof file, and the token prefix of the uncached
# introspection run (so no token of the warm-up comes back in the run).
load() {
  local c=$1 secs=$2 out=$3 phase=$4 url=${URL[$1]} token=$TOKEN
  local -a how=()
  case $c in
    agentward-dpop) how=(-s bench/proofs.lua -H "Authorization: DPoP $DPOP_TOKEN" "$url" -- "$WORK/proofs-$phase" DPoP) ;;
    agentward-mcp-call) how=(-s bench/mcp.lua -H "Authorization: Bearer $token" "$url" -- "$MCP_CALL_BODY") ;;
    agentward-mcp-list*) how=(-s bench/mcp.lua -H "Authorization: Bearer $token" "$url" -- "$MCP_LIST_BODY") ;;
    agentward-wpt) how=(-s bench/proofs.lua -H "Workload-Identity-Token: $WIT" "$url" -- "$WORK/proofs-$phase" Authorization "WPT ") ;;
    agentward-introspection-nocache)
      if [ "$OPAQUE_TOKENS" = unique ]; then how=(-s bench/opaque.lua "$url" -- "$(cat "$WORK/introspection/unique-prefix")$phase-")
      else token=$(cat "$WORK/introspection/opaque")
      fi
      ;;
    agentward-introspection) token=$(cat "$WORK/introspection/opaque") ;;
  esac
  [ ${#how[@]} -gt 0 ] || how=(-s bench/report.lua -H "Authorization: Bearer $token" "$url")
  if [ "$LOADGEN" = wrk ]; then
    timeout $((secs + 20)) "${PIN_LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --timeout 5s --latency "${how[@]}" >"$out"
  else
    timeout $((secs + 60)) "${PIN_LOAD[@]}" npx -y autocannon@8 -c "$CONNECTIONS" -d "$secs" -j \
      -H "authorization=Bearer $token" "$url" >"$out.json" 2>/dev/null
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const us = (ms) => Math.round(ms * 1000);
      const l = r.latency;
      console.log(`RESULT requests=${r.requests.total} duration_us=${us(r.duration * 1000)} p50_us=${us(l.p50)} p90_us=${us(l.p90)} p99_us=${us(l.p99)} p999_us=${us(l.p99_9)} max_us=${us(l.max)} status_err=${r.non2xx} connect_err=0 read_err=${r.errors} write_err=0 timeouts=${r.timeouts}`);
    ' "$out.json" >"$out"
  fi
}

# introspection_calls: calls the introspection endpoint has answered so far.
introspection_calls() { curl -s --max-time 2 "$INTROSPECTION/stats" | sed -n 's/.*"calls":\([0-9]*\).*/\1/p'; }

declare -A RES=() NOTES=() THREADS=()
FAILED=()
for c in "${CONTENDERS[@]}"; do
  proc_pid=${PID[${PROC[$c]}]}
  up_pid=${PID[upstream]}
  wait_quiet
  if [ "$c" = agentward-dpop ] || [ "$c" = agentward-wpt ]; then
    # One proof per request, written now so that every DPoP iat is still within maxAge (120s), and
    # every WPT exp (now + 240s) still ahead, at the end of the measured run. The load core is
    # otherwise idle here.
    started=$SECONDS
    if [ "$c" = agentward-dpop ]; then proofs "$WORK/proofs-all" $((DPOP_MAX_RPS * (WARMUP + DURATION)))
    else wpts "$WORK/proofs-all" $((DPOP_MAX_RPS * (WARMUP + DURATION)))
    fi
    head -n $((DPOP_MAX_RPS * WARMUP)) "$WORK/proofs-all" >"$WORK/proofs-warmup"
    tail -n +$((DPOP_MAX_RPS * WARMUP + 1)) "$WORK/proofs-all" >"$WORK/proofs-run"
    proofs_at=$SECONDS
    log "$c: $((DPOP_MAX_RPS * (WARMUP + DURATION))) proofs written in $((proofs_at - started))s"
  fi
  case $c in agentward-introspection*) calls0=$(introspection_calls) ;; esac
  log "$c: ${WARMUP}s warm-up, ${DURATION}s measured, $CONNECTIONS connections"
  load "$c" "$WARMUP" "$WORK/$c-warmup.out" warmup
  cpu0=$(cpu_ticks "$proc_pid")
  up0=$(cpu_ticks "$up_pid")
  read -r -a threads0 <<<"$(thread_ticks "$proc_pid")"
  case $c in agentward-introspection*) calls1=$(introspection_calls); ins0=$(cpu_ticks "${PID[introspection]}") ;; esac
  read -r core_busy0 core_total0 <<<"$(core_ticks "$SERVER_CPU")"
  load "$c" "$DURATION" "$WORK/$c.out" run
  cpu1=$(cpu_ticks "$proc_pid")
  up1=$(cpu_ticks "$up_pid")
  read -r -a threads1 <<<"$(thread_ticks "$proc_pid")"
  read -r core_busy1 core_total1 <<<"$(core_ticks "$SERVER_CPU")"
  case $c in agentward-introspection*) calls2=$(introspection_calls); ins1=$(cpu_ticks "${PID[introspection]}") ;; esac
  # The server CPU's busy time not spent in the contender or the upstream (other processes,
  # steal, and kernel softirq work not charged to a process), as a share of the run.
  ours=$((up1 - up0))
  [ "$c" = direct ] || ours=$((ours + cpu1 - cpu0))
  other=$(( (core_busy1 - core_busy0 - ours) * 100 / (core_total1 - core_total0 + 1) ))
  [ ${#PIN_SERVER[@]} -gt 0 ] || other=-
  rss=$(rss_kib "$proc_pid")
  { echo "===== $c (${LABEL[$c]}) ${URL[$c]}"; cat "$WORK/$c.out"; echo; } >>"$RAW"

  line=$(grep '^RESULT ' "$WORK/$c.out") || die "$c: no result from $LOADGEN:\n$(cat "$WORK/$c.out")"
  declare -A r=()
  for kv in ${line#RESULT }; do r[${kv%%=*}]=${kv#*=}; done
  errors=$((r[status_err] + r[connect_err] + r[read_err] + r[write_err] + r[timeouts]))
  [ "$errors" -eq 0 ] || FAILED+=("$c: $errors errors or non-2xx responses (see $RAW)")
  case $c in
    agentward-dpop)
      read -r _ used missing _ <<<"$(grep '^PROOFS ' "$WORK/$c.out")"
      [ "${missing#missing=}" = 0 ] || FAILED+=("$c: the proofs ran out (${missing}); raise BENCH_DPOP_MAX_RPS")
      NOTES[$c]="${LABEL[$c]}: a new proof on every request (${used#used=} sent in the measured run, none twice); all written $((SECONDS - proofs_at)) s before the end of the run, within oauth.dpop.maxAge (120s)."
      ;;
    agentward-wpt)
      read -r _ used missing _ <<<"$(grep '^PROOFS ' "$WORK/$c.out")"
      [ "${missing#missing=}" = 0 ] || FAILED+=("$c: the WPTs ran out (${missing}); raise BENCH_DPOP_MAX_RPS")
      NOTES[$c]="${LABEL[$c]}: one WIT, a new WPT on every request (${used#used=} sent in the measured run, none twice), written $((SECONDS - proofs_at)) s before the end of the run (exp now + 240 s)."
      ;;
    agentward-introspection*)
      NOTES[$c]="${LABEL[$c]}: $((calls2 - calls1)) introspection calls in the measured run for ${r[requests]} requests, $((calls1 - calls0)) in the warm-up (cacheTtl ${INTROSPECTION_CACHE_TTL:-60s}); the endpoint (on the load CPU) used $(awk -v t=$((ins1 - ins0)) -v hz="$CLK_TCK" -v n=$((calls2 - calls1)) 'BEGIN { if (n >= 100) printf "%.0f µs of CPU per call", t / hz * 1e6 / n; else printf "%.2f s of CPU in all (too few calls for a per-call figure)", t / hz }')."
      ;;
  esac
  [ -z "${NOTES[$c]:-}" ] || echo "note $c: ${NOTES[$c]}" >>"$RAW"
  case $c in
    agentward* | forwarder)
      THREADS[$c]=$(awk -v m=$((threads1[0] - threads0[0])) -v p=$((threads1[1] - threads0[1])) -v v=$((threads1[2] - threads0[2])) \
        -v hz="$CLK_TCK" -v n="${r[requests]}" 'BEGIN { f = 1e6 / hz / n; printf "%.0f|%.0f|%.0f", m * f, p * f, v * f }')
      echo "threads $c µs/req main|pool|v8 = ${THREADS[$c]}" >>"$RAW"
      ;;
  esac
  # Derived numbers; the contender's CPU excludes the upstream's except for "direct".
  RES[$c]=$(awk -v n="${r[requests]}" -v d="${r[duration_us]}" -v p50="${r[p50_us]}" -v p99="${r[p99_us]}" \
    -v cpu=$((cpu1 - cpu0)) -v up=$((up1 - up0)) -v hz="$CLK_TCK" -v rss="$rss" -v direct="$([ "$c" = direct ] && echo 1 || echo 0)" -v err="$errors" -v other="$other" '
    BEGIN {
      rps = n / (d / 1e6)
      proxy = direct ? "-" : sprintf("%.0f", cpu / hz * 1e6 / n)
      upstream = sprintf("%.0f", up / hz * 1e6 / n)
      printf "%.0f|%.2f|%.2f|%s|%s|%.0f|%s|%d", rps, p50 / 1000, p99 / 1000, proxy, upstream, rss / 1024, other, err
    }')
  echo "derived $c rps|p50ms|p99ms|proxy_cpu_us_per_req|upstream_cpu_us_per_req|rss_mib|other_on_server_cpu_pct|errors = ${RES[$c]}" >>"$RAW"
  unset r
done

for name in "${!ADMIN[@]}"; do
  [ -f "$WORK/$name-audit.jsonl" ] && echo "audit $name: $(wc -l <"$WORK/$name-audit.jsonl") records" >>"$RAW"
done

# ---------------------------------------------------------------------------------------------
# Report.
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src policies 2>/dev/null || revision="$revision (src or policies modified)"
versions="node $(node -v), $(nginx -v 2>&1 | sed 's/^nginx version: //'), HAProxy $(haproxy -v | head -n1 | awk '{print $3}'), $(
  if [ "$LOADGEN" = wrk ]; then wrk -v 2>&1 | head -n1 | awk '{print "wrk " $2}'; else echo "autocannon 8"; fi), opa $(opa version | awk '/^Version:/ {print $2}')"

{
  echo "# Load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- command: \`$(env | grep '^BENCH_' | sort | sed 's/=\(.*\)/="\1" /' | tr -d '\n')bash bench/run.sh\` (agentward $revision)"
  echo "- machine: $(nproc) CPUs ($cpu_model), $mem RAM, $(uname -sr)"
  echo "- versions: $versions"
  echo "- load: $LOADGEN, 1 thread, $CONNECTIONS keep-alive connections, ${WARMUP}s warm-up then ${DURATION}s measured, GET $REQUEST_PATH with one valid ES256 token"
  want agentward-dpop && echo "  (agentward-dpop: one ES256 token bound to a DPoP key, \`Authorization: DPoP\`, and a new ES256 proof per request)"
  want agentward-wpt && echo "  (agentward-wpt: no access token; one ES256 WIT-SVID in \`Workload-Identity-Token\` and a new ES256 WPT per request in \`Authorization: WPT\`)"
  if want agentward-introspection || want agentward-introspection-nocache; then
    echo "  (agentward-introspection: one opaque token; -nocache: $([ "$OPAQUE_TOKENS" = unique ] && echo "a new opaque token per request" || echo "the same opaque token"); endpoint bench/introspection.ts on CPU ${PIN_LOAD[2]:-any})"
  fi
  echo "- CPUs: load generator on CPU ${PIN_LOAD[2]:-any}; upstream and contender share CPU ${PIN_SERVER[2]:-any}"
  echo
  echo "| contender | req/s | p50 ms | p99 ms | proxy CPU µs/req | upstream CPU µs/req | proxy RSS MiB | other load % | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in "${CONTENDERS[@]}"; do
    IFS='|' read -r rps p50 p99 pcpu ucpu rss other err <<<"${RES[$c]}"
    [ "$c" = direct ] && rss="$rss (upstream)"
    echo "| ${LABEL[$c]} | $rps | $p50 | $p99 | $pcpu | $ucpu | $rss | $other | $err |"
  done
  echo
  echo "CPU µs/req: user+system time of the process (all threads) during the measured run, divided by the"
  echo "requests served. Other load %: share of the server CPU busy with anything else during the run"
  echo "(other processes, hypervisor steal, softirq work); above ~10 % the row is disturbed."
  if [ ${#THREADS[@]} -gt 0 ]; then
    echo
    echo "The Node contenders' CPU µs/req by thread: the event loop, libuv's thread pool (WebCrypto"
    echo "signature jobs, file writes) and V8's helper threads (concurrent GC, compilation):"
    echo
    echo "| contender | event loop | thread pool | V8 helpers |"
    echo "|---|---:|---:|---:|"
    for c in "${CONTENDERS[@]}"; do
      [ -n "${THREADS[$c]:-}" ] || continue
      IFS='|' read -r tm tp tv <<<"${THREADS[$c]}"
      echo "| ${LABEL[$c]} | $tm | $tp | $tv |"
    done
  fi
  for c in "${CONTENDERS[@]}"; do
    [ -z "${NOTES[$c]:-}" ] || printf '\n%s\n' "${NOTES[$c]}"
  done
} >"$RESULTS"
{ echo; echo "===== report"; cat "$RESULTS"; echo "versions: $versions"; } >>"$RAW"

cat "$RESULTS"
log "wrote $RESULTS and $RAW"
[ ${#FAILED[@]} -eq 0 ] || die "$(printf '%s\n' "${FAILED[@]}")"
