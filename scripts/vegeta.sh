#!/usr/bin/env bash
# Builds the pinned vegeta (constant-rate HTTP load generator, Go module
# github.com/tsenart/vegeta/v12) into the toolchain cache once and reuses it. Source it to get
# vegeta on PATH:   . scripts/vegeta.sh
# Used by bench/open-loop.sh and bench/soak.sh: wrk keeps N requests in flight (closed loop), so
# a slow server slows its own load; vegeta sends at a fixed rate whatever the answers, which is
# how callers that do not wait for each other load a sidecar (issue 12, "open-loop").
# AGENTWARD_VEGETA: a vegeta binary to use instead (no build).
# Cache folder: $AGENTWARD_CACHE, default ~/.cache/agentward (shared with scripts/toolchain.sh).
VEGETA_VERSION="${AGENTWARD_VEGETA_VERSION:-v12.13.0}"

_aw_cache="${AGENTWARD_CACHE:-$HOME/.cache/agentward}"
_aw_vegeta_dir="$_aw_cache/vegeta-$VEGETA_VERSION"

_aw_vlog() { printf 'vegeta: %s\n' "$*" >&2; }

_aw_install_vegeta() {
  if [ -x "$_aw_vegeta_dir/vegeta" ]; then return 0; fi
  command -v go >/dev/null || { _aw_vlog "go is needed to build vegeta $VEGETA_VERSION (or set AGENTWARD_VEGETA to a vegeta binary)"; return 1; }
  _aw_vlog "building vegeta $VEGETA_VERSION into $_aw_vegeta_dir (a minute, once per machine)"
  rm -rf "$_aw_vegeta_dir.partial" && mkdir -p "$_aw_vegeta_dir.partial"
  if ! GOBIN="$_aw_vegeta_dir.partial" go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" 2>"$_aw_vegeta_dir.partial/install.log"; then
    # go install refuses modules whose go.mod has replace directives; build from a throwaway module.
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && go mod init tmp >/dev/null 2>&1 && go get "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" \
      && go build -o "$_aw_vegeta_dir.partial/vegeta" github.com/tsenart/vegeta/v12) || { _aw_vlog "building vegeta failed (log: $_aw_vegeta_dir.partial/install.log)"; rm -rf "$tmp"; return 1; }
    rm -rf "$tmp"
  fi
  "$_aw_vegeta_dir.partial/vegeta" -version >/dev/null 2>&1 || { _aw_vlog "the built vegeta does not run"; return 1; }
  rm -rf "$_aw_vegeta_dir" && mv "$_aw_vegeta_dir.partial" "$_aw_vegeta_dir"
}

if [ -n "${AGENTWARD_VEGETA:-}" ]; then
  _aw_vegeta_dir=$(dirname "$AGENTWARD_VEGETA")
else
  _aw_install_vegeta || return 1 2>/dev/null || exit 1
fi
export PATH="$_aw_vegeta_dir:$PATH"
