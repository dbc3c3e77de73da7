#!/usr/bin/env bash
# Builds the pinned Jaeger (the real OTLP receiver of test/integration/tracing.test.ts: the v2
# "jaeger" binary, whose all-in-one default configuration accepts OTLP on 4317/4318 and serves
# the query API on 16686) into the cache folder once and reuses it. Source it to get
# AGENTWARD_JAEGER:   . scripts/jaeger.sh
# scripts/run sources it for `test` only. Set AGENTWARD_JAEGER to a jaeger binary to skip the build.
# Cache folder: $AGENTWARD_CACHE, default ~/.cache/agentward (shared by every clone on a machine).
# The Go module github.com/jaegertracing/jaeger v1.x tags carry the v2 binary in cmd/jaeger.
JAEGER_VERSION="${AGENTWARD_JAEGER_VERSION:-v1.75.0}"

_aw_cache="${AGENTWARD_CACHE:-$HOME/.cache/agentward}"
_aw_jaeger_dir="$_aw_cache/jaeger-$JAEGER_VERSION"

_aw_jlog() { printf 'jaeger: %s\n' "$*" >&2; }

_aw_install_jaeger() {
  if [ -x "$_aw_jaeger_dir/jaeger" ]; then return 0; fi
  command -v go >/dev/null || { _aw_jlog "go is needed to build jaeger $JAEGER_VERSION (or set AGENTWARD_JAEGER to a jaeger binary)"; return 1; }
  _aw_jlog "building Jaeger $JAEGER_VERSION into $_aw_jaeger_dir (several minutes, once per machine)"
  mkdir -p "$_aw_cache"
  rm -rf "$_aw_jaeger_dir.partial" && mkdir -p "$_aw_jaeger_dir.partial"
  local log="$_aw_jaeger_dir.partial/install.log"
  if ! CGO_ENABLED=0 GOBIN="$_aw_jaeger_dir.partial" go install -trimpath -ldflags "-s -w" \
      "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >"$log" 2>&1; then
    # `go install` refuses Jaeger: its go.mod has replace directives, which only apply in the main
    # module. So build inside a copy of the module's own source, where its go.mod (and go.sum) are
    # the main module's (as scripts/hydra.sh does for Hydra).
    local tmp dir; tmp=$(mktemp -d)
    dir=$(cd "$tmp" && go mod init tmp >/dev/null 2>>"$log" \
      && go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" 2>>"$log" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
      _aw_jlog "go mod download github.com/jaegertracing/jaeger@$JAEGER_VERSION failed; log:"; cat "$log" >&2
      rm -rf "$tmp"; return 1
    fi
    cp -r "$dir" "$tmp/src" && chmod -R u+w "$tmp/src"
    if ! (cd "$tmp/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$_aw_jaeger_dir.partial/jaeger" ./cmd/jaeger) >>"$log" 2>&1; then
      _aw_jlog "building jaeger $JAEGER_VERSION failed; log:"; cat "$log" >&2
      rm -rf "$tmp"; return 1
    fi
    rm -rf "$tmp"
  fi
  "$_aw_jaeger_dir.partial/jaeger" version >/dev/null 2>>"$log" || { _aw_jlog "the built jaeger does not run; log:"; cat "$log" >&2; return 1; }
  rm -rf "$_aw_jaeger_dir" && mv "$_aw_jaeger_dir.partial" "$_aw_jaeger_dir"
}

if [ -n "${AGENTWARD_JAEGER:-}" ]; then
  [ -x "$AGENTWARD_JAEGER" ] || { _aw_jlog "AGENTWARD_JAEGER=$AGENTWARD_JAEGER is not an executable"; return 1 2>/dev/null || exit 1; }
else
  _aw_install_jaeger || return 1 2>/dev/null || exit 1
  export AGENTWARD_JAEGER="$_aw_jaeger_dir/jaeger"
fi
