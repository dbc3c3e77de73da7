#!/usr/bin/env bash
# Builds the pinned Ory Hydra (the real authorization server of test/integration/hydra.test.ts)
# into the cache folder once and reuses it. Source it to get AGENTWARD_HYDRA:   . scripts/hydra.sh
# scripts/run sources it for `test` only: the demo needs no Go.
# Set AGENTWARD_HYDRA to a hydra binary to skip the build.
# Cache folder: $AGENTWARD_CACHE, default ~/.cache/agentward (shared by every clone on a machine).
HYDRA_VERSION="${AGENTWARD_HYDRA_VERSION:-v2.3.0}"

_aw_cache="${AGENTWARD_CACHE:-$HOME/.cache/agentward}"
_aw_hydra_dir="$_aw_cache/hydra-$HYDRA_VERSION"

_aw_hydra_log() { printf 'hydra: %s\n' "$*" >&2; }

_aw_install_hydra() {
  if [ -x "$_aw_hydra_dir/hydra" ]; then return 0; fi
  command -v go >/dev/null || { _aw_hydra_log "go (and gcc, for sqlite) is needed to build hydra $HYDRA_VERSION (or set AGENTWARD_HYDRA to a hydra binary)"; return 1; }
  _aw_hydra_log "building Ory Hydra $HYDRA_VERSION into $_aw_hydra_dir (a few minutes, once per machine)"
  mkdir -p "$_aw_cache"
  rm -rf "$_aw_hydra_dir.partial" && mkdir -p "$_aw_hydra_dir.partial"
  local log="$_aw_hydra_dir.partial/build.log"
  local tmp; tmp=$(mktemp -d)
  # `go install` refuses Hydra: its go.mod replaces github.com/gobuffalo/pop/v6 with a fork, and
  # replace directives only apply in the main module. So build inside a copy of the module's own
  # source, where its go.mod (and go.sum) are the main module's.
  local dir
  dir=$(cd "$tmp" && go mod init tmp >/dev/null 2>>"$log" \
    && go mod download -json "github.com/ory/hydra/v2@$HYDRA_VERSION" 2>>"$log" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
    _aw_hydra_log "go mod download github.com/ory/hydra/v2@$HYDRA_VERSION failed; log:"; cat "$log" >&2
    rm -rf "$tmp"; return 1
  fi
  cp -r "$dir" "$tmp/src" && chmod -R u+w "$tmp/src"
  # Its go.mod also replaces github.com/ory/hydra-client-go/v2 with ./internal/httpclient, a
  # nested module that the module zip leaves out. Only the CLI's client commands use it (not
  # `hydra serve`): put the published client of the version go.mod requires there.
  if [ ! -f "$tmp/src/internal/httpclient/go.mod" ]; then
    local client_version client_dir
    client_version=$(awk '$1 == "github.com/ory/hydra-client-go/v2" && $2 ~ /^v/ { print $2; exit }' "$tmp/src/go.mod")
    client_dir=$(cd "$tmp" && go mod download -json "github.com/ory/hydra-client-go/v2@$client_version" 2>>"$log" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    if [ -z "$client_dir" ] || [ ! -f "$client_dir/go.mod" ]; then
      _aw_hydra_log "go mod download github.com/ory/hydra-client-go/v2@$client_version failed; log:"; cat "$log" >&2
      rm -rf "$tmp"; return 1
    fi
    rm -rf "$tmp/src/internal/httpclient" && cp -r "$client_dir" "$tmp/src/internal/httpclient" && chmod -R u+w "$tmp/src/internal/httpclient"
  fi
  # sqlite: the in-memory database (DSN=memory) the tests use; the tag set is Hydra's own release build's.
  if ! (cd "$tmp/src" && CGO_ENABLED=1 go build -tags sqlite,sqlite_omit_load_extension -trimpath \
      -ldflags "-s -w -X github.com/ory/hydra/v2/driver/config.Version=$HYDRA_VERSION" \
      -o "$_aw_hydra_dir.partial/hydra" .) >>"$log" 2>&1; then
    _aw_hydra_log "building hydra $HYDRA_VERSION failed; log:"; cat "$log" >&2
    rm -rf "$tmp"; return 1
  fi
  rm -rf "$tmp"
  "$_aw_hydra_dir.partial/hydra" version >/dev/null 2>>"$log" || { _aw_hydra_log "the built hydra does not run; log:"; cat "$log" >&2; return 1; }
  rm -rf "$_aw_hydra_dir" && mv "$_aw_hydra_dir.partial" "$_aw_hydra_dir"
}

if [ -n "${AGENTWARD_HYDRA:-}" ]; then
  [ -x "$AGENTWARD_HYDRA" ] || { _aw_hydra_log "AGENTWARD_HYDRA=$AGENTWARD_HYDRA is not an executable"; return 1 2>/dev/null || exit 1; }
else
  _aw_install_hydra || return 1 2>/dev/null || exit 1
  export AGENTWARD_HYDRA="$_aw_hydra_dir/hydra"
fi
