#!/usr/bin/env bash
# The load benchmark (bench/README.md): the same closed-loop load, one contender at a time,
#   direct             the upstream alone (the ceiling)
#   forwarder          bench/forwarder.ts: node:http + undici, no auth (the floor for a Node proxy)
#   nginx              nginx reverse proxy with a keep-alive upstream pool, no auth
#   haproxy            HAProxy gating on the same JWT (jwt_verify ES256 + alg/typ/iss/aud/exp/scope)
#   agentward          agentward: RFC 9068 verification, the default Rego policy, file audit
#   agentward-nocache  the same with oauth.tokenCacheSize 0: a signature check on every request
#   agentward-nometrics the agentward row with metrics.enabled false: the cost of /metrics by difference
#   agentward-tracing  the agentward row with OpenTelemetry tracing on, every request sampled and
#                      exported over OTLP/HTTP to a Jaeger on the load CPU (scripts/jaeger.sh)
#   agentward-shed     agentward at its admission limit (maxInFlight 1, maxQueued 0, the one slot
#                      held by a request the upstream never answers): every request is refused with
#                      503 ERR_OVERLOADED; req/s is refusals per second, what shedding costs
#   agentward-forged   the agentward process above flooded with one forged token (valid shape, the
#                      issuer's kid, another key's signature): refusals per second, every answer
#                      checked to be 401 ERR_TOKEN_SIGNATURE (bench/forged.lua)
#   agentward-dpop     agentward with a DPoP-bound token (cnf.jkt) and a fresh DPoP proof per request
#                      (bench/dpop-proofs.ts writes them just before the run, bench/proofs.lua sends them)
#   agentward-dpop-redis the agentward-dpop row with shared state on Redis (state.backend: redis, a
#                      redis-server on the load CPU): one SET NX round trip per proof
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
# and writes req/s (agentward-forged: refusals/s), p50/p99 latency, CPU per request and RSS to
# bench/results/<stamp>.md (raw tool output to bench/results/<stamp>.raw, gitignored). What it
# shares with bench/open-loop.sh and bench/soak.sh (processes, configs, checks, /proc readings)
# is in bench/lib.sh.
#
#   bash bench/run.sh            (scripts/run bench does the same after bootstrapping Node and opa)
#
# Knobs (environment): BENCH_DURATION (s, default 15), BENCH_WARMUP (s, 3), BENCH_CONNECTIONS (32),
# BENCH_LOAD_CPU (1), BENCH_SERVER_CPU (0), BENCH_PORT_BASE (18000), BENCH_ONLY ("nginx haproxy"),
# BENCH_LOADGEN (wrk|autocannon; default wrk when installed), BENCH_QUIET_BUDGET (s, 60),
# BENCH_TIME_LIMIT (s, 420), BENCH_DPOP_MAX_RPS (3000: proofs written per second of load),
# BENCH_INTROSPECTION_CACHE_TTL (agentward's default, 60s), BENCH_OPAQUE_TOKENS (unique: a new token
# per request in agentward-introspection-nocache; one: the same token, which single flight shares),
# BENCH_NODE_FLAGS (Node flags of every agentward contender, default the container's
# "--max-semi-space-size=8"; bench/lib.sh).
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
ALL_CONTENDERS=(direct forwarder nginx haproxy agentward agentward-nocache agentward-nometrics agentward-tracing agentward-forged agentward-shed agentward-dpop agentward-dpop-redis agentward-wpt agentward-mcp-call agentward-mcp-list agentward-mcp-list-nofilter agentward-introspection agentward-introspection-nocache)
read -r -a CONTENDERS <<<"${BENCH_ONLY:-${ALL_CONTENDERS[*]}}"
REQUEST_PATH=/api/items
AUDIENCE=https://tools.bench.test
# RFC 9449 §4.3 step 9: agentward compares htu with the resource origin (resource.id's) + path.
DPOP_HTU=$AUDIENCE$REQUEST_PATH
# agentward's client id at the introspection endpoint.
INTROSPECTION_CLIENT=bench-rs

# ---------------------------------------------------------------------------------------------
# Tools. Node and opa come from the repo's pinned toolchain (instant when cached); nginx,
# HAProxy and wrk from Debian (bench/lib.sh: what run.sh, open-loop.sh and soak.sh share).
. scripts/toolchain.sh
. bench/lib.sh
ensure_packages nginx haproxy wrk curl

LOADGEN=${BENCH_LOADGEN:-$(command -v wrk >/dev/null && echo wrk || echo autocannon)}
if [ "$LOADGEN" != wrk ] && [[ " ${CONTENDERS[*]} " == *" agentward-dpop "* || " ${CONTENDERS[*]} " == *" agentward-wpt "* || " ${CONTENDERS[*]} " == *" agentward-mcp"* || " ${CONTENDERS[*]} " == *" agentward-introspection-nocache "* || " ${CONTENDERS[*]} " == *" agentward-forged "* || " ${CONTENDERS[*]} " == *" agentward-shed "* ]]; then
  die "agentward-dpop, agentward-wpt, the agentward-mcp contenders, agentward-introspection-nocache and agentward-forged need wrk (Lua scripts)"
fi

pin_cpus

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
P_AW_NOMETRICS=$((PORT_BASE + 23))
P_AW_NOMETRICS_ADMIN=$((PORT_BASE + 24))
P_AW_TRACING=$((PORT_BASE + 25))
P_AW_TRACING_ADMIN=$((PORT_BASE + 26))
P_JAEGER_OTLP=$((PORT_BASE + 27))
P_JAEGER_QUERY=$((PORT_BASE + 28))
P_JAEGER_QUERY_GRPC=$((PORT_BASE + 29))
P_AW_DPOP_REDIS=$((PORT_BASE + 30))
P_AW_DPOP_REDIS_ADMIN=$((PORT_BASE + 31))
P_REDIS=$((PORT_BASE + 32))
P_AW_SHED=$((PORT_BASE + 33))
P_AW_SHED_ADMIN=$((PORT_BASE + 34))
ports_free "$P_ISSUER" "$P_UPSTREAM" "$P_FORWARDER" "$P_NGINX" "$P_HAPROXY" "$P_AW" "$P_AW_NOCACHE" "$P_AW_DPOP" "$P_AW_INTRO" "$P_AW_INTRO_NOCACHE" \
  "$P_INTROSPECTION" "$P_AW_ADMIN" "$P_AW_NOCACHE_ADMIN" "$P_AW_DPOP_ADMIN" "$P_AW_INTRO_ADMIN" "$P_AW_INTRO_NOCACHE_ADMIN" "$P_AW_WPT" "$P_AW_WPT_ADMIN" \
  "$P_AW_MCP" "$P_AW_MCP_ADMIN" "$P_AW_MCP_NOFILTER" "$P_AW_MCP_NOFILTER_ADMIN" "$P_AW_NOMETRICS" "$P_AW_NOMETRICS_ADMIN" \
  "$P_AW_TRACING" "$P_AW_TRACING_ADMIN" "$P_JAEGER_OTLP" "$P_JAEGER_QUERY" "$P_JAEGER_QUERY_GRPC" \
  "$P_AW_DPOP_REDIS" "$P_AW_DPOP_REDIS_ADMIN" "$P_REDIS" "$P_AW_SHED" "$P_AW_SHED_ADMIN"
begin_run

# ---------------------------------------------------------------------------------------------
# Issuer (JWK Set + tokens) and upstream.
log "work dir $WORK; load generator $LOADGEN; contenders: ${CONTENDERS[*]}"
start_issuer

start_upstream

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

if want haproxy; then start_haproxy "$P_HAPROXY"; fi

# agentward-forged floods this same process (PROC below), after its own run when both are measured.
if want agentward || want agentward-forged; then
  agentward_config agentward "$P_AW" "$P_AW_ADMIN" 10000
  start_agentward agentward
fi
if want agentward-shed; then
  AW_LISTEN_EXTRA="  maxInFlight: 1
  maxQueued: 0" agentward_config agentward-shed "$P_AW_SHED" "$P_AW_SHED_ADMIN" 10000
  # The held request must hold its slot for the whole run, not end in a 504.
  sed -i "s|^  url: http://127.0.0.1:$P_UPSTREAM\$|&\n  timeout: 3600s|" "$WORK/agentward-shed.yaml"
  start_agentward agentward-shed
fi
if want agentward-nocache; then
  agentward_config agentward-nocache "$P_AW_NOCACHE" "$P_AW_NOCACHE_ADMIN" 0
  start_agentward agentward-nocache
fi
if want agentward-nometrics; then
  agentward_config agentward-nometrics "$P_AW_NOMETRICS" "$P_AW_NOMETRICS_ADMIN" 10000
  printf 'metrics:\n  enabled: false\n' >>"$WORK/agentward-nometrics.yaml"
  start_agentward agentward-nometrics
fi
if want agentward-tracing; then
  # Jaeger (the all-in-one cut down to OTLP/HTTP in and memory storage, as test/helpers/jaeger.ts)
  # on the load CPU, so that only agentward's own cost of tracing lands on the server CPU.
  . scripts/jaeger.sh
  cat >"$WORK/jaeger.yaml" <<EOF
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter] }
  telemetry: { metrics: { level: none }, logs: { level: warn } }
extensions:
  jaeger_query:
    storage: { traces: memstore }
    http: { endpoint: "127.0.0.1:$P_JAEGER_QUERY" }
    grpc: { endpoint: "127.0.0.1:$P_JAEGER_QUERY_GRPC" }
  jaeger_storage:
    backends: { memstore: { memory: { max_traces: 10000 } } }
receivers:
  otlp: { protocols: { http: { endpoint: "127.0.0.1:$P_JAEGER_OTLP" } } }
processors:
  batch: { timeout: 100ms }
exporters:
  jaeger_storage_exporter: { trace_storage: memstore }
EOF
  start jaeger "${PIN_LOAD[@]}" "$AGENTWARD_JAEGER" --config "$WORK/jaeger.yaml"
  wait_until 30 jaeger answers_http "http://127.0.0.1:$P_JAEGER_QUERY/api/services"
  agentward_config agentward-tracing "$P_AW_TRACING" "$P_AW_TRACING_ADMIN" 10000
  cat >>"$WORK/agentward-tracing.yaml" <<EOF
tracing:
  serviceName: agentward-bench
  sampleRatio: 1
  otlp:
    endpoint: http://127.0.0.1:$P_JAEGER_OTLP/v1/traces
EOF
  start_agentward agentward-tracing
fi
if want agentward-dpop; then
  # DPoP in its default mode (allowed) with every default but maxAge: the proofs are written a
  # few seconds before the warm-up and must still be accepted at the end of the measured run
  # (iat within maxAge + oauth.clockSkew, 30s), so 120s rather than 60s. Nothing else changes:
  # a proof is checked in full either way, and its id is remembered for maxAge + 2 x clockSkew.
  agentward_config agentward-dpop "$P_AW_DPOP" "$P_AW_DPOP_ADMIN" 10000 "" "  dpop:
    maxAge: 120s"
  start_agentward agentward-dpop
fi
if want agentward-dpop-redis; then
  # The agentward-dpop row with shared state on Redis (state.backend: redis): every proof id is
  # claimed with one SET NX on a redis-server pinned to the load CPU (no persistence), so the row
  # shows the round trip's cost on the proxy's CPU and in latency.
  . scripts/redis.sh
  start redis "${PIN_LOAD[@]}" "${AGENTWARD_REDIS_SERVER:-redis-server}" --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no
  wait_until 20 redis bash -c "exec 3<>/dev/tcp/127.0.0.1/$P_REDIS"
  agentward_config agentward-dpop-redis "$P_AW_DPOP_REDIS" "$P_AW_DPOP_REDIS_ADMIN" 10000 "" "  dpop:
    maxAge: 120s"
  cat >>"$WORK/agentward-dpop-redis.yaml" <<EOF
state:
  backend: redis
  redis:
    url: redis://127.0.0.1:$P_REDIS
EOF
  start_agentward agentward-dpop-redis
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
  start_agentward agentward-wpt
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
  start_agentward "$1"
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
  start_agentward agentward-introspection
fi
if want agentward-introspection-nocache; then
  agentward_config agentward-introspection-nocache "$P_AW_INTRO_NOCACHE" "$P_AW_INTRO_NOCACHE_ADMIN" 10000 "$(introspection_yaml 0)"
  start_agentward agentward-introspection-nocache
fi

declare -A URL=(
  [direct]="http://127.0.0.1:$P_UPSTREAM$REQUEST_PATH"
  [forwarder]="http://127.0.0.1:$P_FORWARDER$REQUEST_PATH"
  [nginx]="http://127.0.0.1:$P_NGINX$REQUEST_PATH"
  [haproxy]="http://127.0.0.1:$P_HAPROXY$REQUEST_PATH"
  [agentward]="http://127.0.0.1:$P_AW$REQUEST_PATH"
  [agentward-nocache]="http://127.0.0.1:$P_AW_NOCACHE$REQUEST_PATH"
  [agentward-nometrics]="http://127.0.0.1:$P_AW_NOMETRICS$REQUEST_PATH"
  [agentward-tracing]="http://127.0.0.1:$P_AW_TRACING$REQUEST_PATH"
  [agentward-forged]="http://127.0.0.1:$P_AW$REQUEST_PATH"
  [agentward-shed]="http://127.0.0.1:$P_AW_SHED$REQUEST_PATH"
  [agentward-dpop]="http://127.0.0.1:$P_AW_DPOP$REQUEST_PATH"
  [agentward-dpop-redis]="http://127.0.0.1:$P_AW_DPOP_REDIS$REQUEST_PATH"
  [agentward-wpt]="http://127.0.0.1:$P_AW_WPT$REQUEST_PATH"
  [agentward-mcp-call]="http://127.0.0.1:$P_AW_MCP/mcp"
  [agentward-mcp-list]="http://127.0.0.1:$P_AW_MCP/mcp-list"
  [agentward-mcp-list-nofilter]="http://127.0.0.1:$P_AW_MCP_NOFILTER/mcp-list"
  [agentward-introspection]="http://127.0.0.1:$P_AW_INTRO$REQUEST_PATH"
  [agentward-introspection-nocache]="http://127.0.0.1:$P_AW_INTRO_NOCACHE$REQUEST_PATH"
)
declare -A ADMIN=(
  [agentward]=$P_AW_ADMIN [agentward-nocache]=$P_AW_NOCACHE_ADMIN [agentward-dpop]=$P_AW_DPOP_ADMIN [agentward-forged]=$P_AW_ADMIN
  [agentward-nometrics]=$P_AW_NOMETRICS_ADMIN [agentward-tracing]=$P_AW_TRACING_ADMIN [agentward-dpop-redis]=$P_AW_DPOP_REDIS_ADMIN
  [agentward-introspection]=$P_AW_INTRO_ADMIN [agentward-introspection-nocache]=$P_AW_INTRO_NOCACHE_ADMIN
  [agentward-wpt]=$P_AW_WPT_ADMIN [agentward-shed]=$P_AW_SHED_ADMIN
  [agentward-mcp-call]=$P_AW_MCP_ADMIN [agentward-mcp-list]=$P_AW_MCP_ADMIN [agentward-mcp-list-nofilter]=$P_AW_MCP_NOFILTER_ADMIN
)
# The process whose CPU and memory are the contender's cost (the upstream for "direct").
declare -A PROC=([direct]=upstream [forwarder]=forwarder [nginx]=nginx [haproxy]=haproxy)
for c in "${!ADMIN[@]}"; do PROC[$c]=$c; done
PROC[agentward-forged]=agentward
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
  [agentward-nometrics]="agentward, metrics off"
  [agentward-tracing]="agentward, tracing on (100 % sampled, OTLP to Jaeger)"
  [agentward-forged]="agentward, forged-token flood (refusals)"
  [agentward-shed]="agentward at its admission limit (503 refusals)"
  [agentward-dpop]="agentward, JWT + DPoP proof"
  [agentward-dpop-redis]="agentward, JWT + DPoP proof, replay ids on Redis"
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
    agentward-dpop | agentward-dpop-redis)
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
  check_valid "$c" "$url" "${valid[@]}"
  case $c in haproxy | agentward*) ;; *) continue ;; esac
  check_token_probes "$c" "$url"
  case $c in
    agentward-dpop | agentward-dpop-redis)
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
    agentward-shed)
      # The one slot is held for the whole run by a request the upstream never answers.
      start shed-hold curl -s -o /dev/null --max-time "$TIME_LIMIT" "http://127.0.0.1:$P_AW_SHED/hold" -H "$(bearer issuer/token)"
      held_slot() { curl -s --max-time 2 "http://127.0.0.1:$P_AW_SHED_ADMIN/readyz" | grep -q '"inFlight":1,'; }
      wait_until 10 shed-hold held_slot
      expect "$c" overloaded 503 ERR_OVERLOADED "$url" "$(bearer issuer/token)"
      ;;
    agentward-forged)
      # The flood's token must be refused for its signature, not for anything checked before it.
      expect "$c" forged-signature 401 ERR_TOKEN_SIGNATURE "$url" "$(bearer issuer/forged)"
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
# load CONTENDER SECONDS OUT PHASE: one closed-loop run from the load core; leaves a RESULT line in
# OUT. PHASE (warmup or run) picks the DPoP proof file, and the token prefix of the uncached
# introspection run (so no token of the warm-up comes back in the run).
load() {
  local c=$1 secs=$2 out=$3 phase=$4 url=${URL[$1]} token=$TOKEN
  local -a how=()
  case $c in
    agentward-forged) how=(-s bench/forged.lua -H "Authorization: Bearer $(cat "$WORK/issuer/forged")" "$url") ;;
    agentward-shed) how=(-s bench/forged.lua -H "Authorization: Bearer $token" "$url" -- 503 ERR_OVERLOADED) ;;
    agentward-dpop | agentward-dpop-redis) how=(-s bench/proofs.lua -H "Authorization: DPoP $DPOP_TOKEN" "$url" -- "$WORK/proofs-$phase" DPoP) ;;
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
  if [[ "$c" = agentward-dpop* ]] || [ "$c" = agentward-wpt ]; then
    # One proof per request, written now so that every DPoP iat is still within maxAge (120s), and
    # every WPT exp (now + 240s) still ahead, at the end of the measured run. The load core is
    # otherwise idle here.
    started=$SECONDS
    if [[ "$c" = agentward-dpop* ]]; then proofs "$WORK/proofs-all" $((DPOP_MAX_RPS * (WARMUP + DURATION)))
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
  # The flood's 401s are its answers: what counts as an error there is anything but the refusal
  # forged.lua expects (other), and socket errors and timeouts.
  if [ "$c" = agentward-forged ] || [ "$c" = agentward-shed ]; then
    read -r _ refused wrong first_wrong <<<"$(grep '^FORGED ' "$WORK/$c.out")"
    errors=$((${wrong#other=} + r[connect_err] + r[read_err] + r[write_err] + r[timeouts]))
    expected="401 ERR_TOKEN_SIGNATURE"
    [ "$c" = agentward-shed ] && expected="503 ERR_OVERLOADED"
    [ "${wrong#other=}" = 0 ] || FAILED+=("$c: ${wrong#other=} answers were not $expected (the first: status ${first_wrong#first_other=})")
    how_refused="one forged token (the issuer's kid, another key's signature) on every request"
    [ "$c" = agentward-shed ] && how_refused="a valid token on every request, refused at admission (its one slot held)"
    NOTES[$c]="${LABEL[$c]}: $how_refused; req/s is refusals per second; all ${refused#refused=} answers of the measured run were checked: $expected."
  fi
  [ "$errors" -eq 0 ] || FAILED+=("$c: $errors errors or non-2xx responses (see $RAW)")
  case $c in
    agentward-dpop | agentward-dpop-redis)
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
versions="node $(node -v), $(nginx -v 2>&1 | sed 's/^nginx version: //'), HAProxy $(haproxy -v | head -n1 | awk '{print $3}'), $(
  if [ "$LOADGEN" = wrk ]; then wrk -v 2>&1 | head -n1 | awk '{print "wrk " $2}'; else echo "autocannon 8"; fi), opa $(opa version | awk '/^Version:/ {print $2}')"

{
  echo "# Load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- command: \`$(command_line BENCH bench/run.sh)\` (agentward $(revision))"
  echo "- machine: $(machine)"
  runtime_note
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
