#!/usr/bin/env bash
# Installs what test/unit/deploy.test.ts needs to render and validate deploy/ into the cache
# folder once, and reuses it. Source it:   . scripts/kube-tools.sh
#   helm         renders deploy/helm/agentward with each deploy/helm/examples/*.yaml
#   kubeconform  validates every rendered or plain manifest against the Kubernetes schemas
#   schemas      the JSON Schemas of Kubernetes $KUBE_VERSION, made by scripts/kube-schemas.ts from
#                the OpenAPI document the Kubernetes release ships (api/openapi-spec/swagger.json
#                of the Go module k8s.io/kubernetes, downloaded with `go mod download`: nothing of
#                it is built)
# Sets AGENTWARD_HELM, AGENTWARD_KUBECONFORM and AGENTWARD_KUBE_SCHEMAS (a kubeconform
# -schema-location template). scripts/run sources it for `test`. Set AGENTWARD_HELM /
# AGENTWARD_KUBECONFORM to binaries of your own to skip their builds.
# Cache folder: $AGENTWARD_CACHE, default ~/.cache/agentward (shared by every clone on a machine).
# Pins live here and nowhere else.
HELM_VERSION="${AGENTWARD_HELM_VERSION:-v4.3.2}"
KUBECONFORM_VERSION="${AGENTWARD_KUBECONFORM_VERSION:-v0.7.0}"
KUBE_VERSION="${AGENTWARD_KUBE_VERSION:-1.36.3}"

_aw_cache="${AGENTWARD_CACHE:-$HOME/.cache/agentward}"
_aw_klog() { printf 'kube-tools: %s\n' "$*" >&2; }

# _aw_go_tool NAME MODULE/CMD VERSION: builds one Go command into $_aw_cache/NAME-VERSION/NAME.
_aw_go_tool() {
  local name="$1" pkg="$2" version="$3" dir="$_aw_cache/$1-$3"
  if [ -x "$dir/$name" ]; then return 0; fi
  command -v go >/dev/null || { _aw_klog "go is needed to build $name $version"; return 1; }
  _aw_klog "building $name $version into $dir (once per machine)"
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  if ! GOBIN="$dir.partial" go install "$pkg@$version" 2>"$dir.partial/install.log"; then
    _aw_klog "building $name failed; log:"; cat "$dir.partial/install.log" >&2; return 1
  fi
  rm -rf "$dir" && mv "$dir.partial" "$dir"
}

_aw_kube_schemas() {
  local dir="$_aw_cache/kube-schemas-v$KUBE_VERSION"
  if [ -f "$dir/_definitions.json" ]; then return 0; fi
  command -v go >/dev/null || { _aw_klog "go is needed to download the Kubernetes $KUBE_VERSION OpenAPI document"; return 1; }
  _aw_klog "writing the Kubernetes $KUBE_VERSION JSON Schemas into $dir (once per machine)"
  local tmp src
  tmp=$(mktemp -d)
  src=$(cd "$tmp" && go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" 2>"$tmp/log" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$src" ] || [ ! -f "$src/api/openapi-spec/swagger.json" ]; then
    _aw_klog "go mod download k8s.io/kubernetes@v$KUBE_VERSION failed; log:"; cat "$tmp/log" >&2; rm -rf "$tmp"; return 1
  fi
  rm -rf "$tmp" "$dir.partial"
  node scripts/kube-schemas.ts "$src/api/openapi-spec/swagger.json" "$dir.partial" || return 1
  rm -rf "$dir" && mv "$dir.partial" "$dir"
}

_aw_kube_tools() {
  if [ -z "${AGENTWARD_HELM:-}" ]; then
    _aw_go_tool helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION" || return 1
    AGENTWARD_HELM="$_aw_cache/helm-$HELM_VERSION/helm"
  fi
  if [ -z "${AGENTWARD_KUBECONFORM:-}" ]; then
    _aw_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" || return 1
    AGENTWARD_KUBECONFORM="$_aw_cache/kubeconform-$KUBECONFORM_VERSION/kubeconform"
  fi
  _aw_kube_schemas || return 1
  export AGENTWARD_HELM AGENTWARD_KUBECONFORM
  export AGENTWARD_KUBE_SCHEMAS="$_aw_cache/kube-schemas-v$KUBE_VERSION/{{ .ResourceKind }}{{ .KindSuffix }}.json"
}

_aw_kube_tools || return 1 2>/dev/null || exit 1
