#!/usr/bin/env bash
# Makes sure redis-server (the real Redis of test/integration/shared-state.test.ts, started by
# test/helpers/redis.ts) is on PATH: when it is not, installs the distribution's package once
# (apt-get update && apt-get install -y redis-server; with sudo when not root). Source it:
#   . scripts/redis.sh
# scripts/run sources it for `test` only. Set AGENTWARD_REDIS_SERVER to a redis-server (or
# valkey-server) binary of your own to skip the install.
_aw_redis_log() { printf 'redis: %s\n' "$*" >&2; }

_aw_install_redis() {
  if [ -n "${AGENTWARD_REDIS_SERVER:-}" ]; then
    [ -x "$AGENTWARD_REDIS_SERVER" ] || command -v "$AGENTWARD_REDIS_SERVER" >/dev/null || { _aw_redis_log "AGENTWARD_REDIS_SERVER=$AGENTWARD_REDIS_SERVER is not an executable"; return 1; }
    return 0
  fi
  if command -v redis-server >/dev/null; then return 0; fi
  command -v apt-get >/dev/null || { _aw_redis_log "redis-server is not on PATH and apt-get is not available: install Redis 6.2 or later (or Valkey) and put redis-server on PATH, or set AGENTWARD_REDIS_SERVER"; return 1; }
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { _aw_redis_log "redis-server is not on PATH; run as root or install sudo, or install it yourself (apt-get install redis-server)"; return 1; }
    sudo="sudo"
  fi
  _aw_redis_log "installing redis-server (apt-get, once per machine)"
  $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >&2 \
    || { _aw_redis_log "apt-get install redis-server failed"; return 1; }
  command -v redis-server >/dev/null || { _aw_redis_log "redis-server is still not on PATH after the install"; return 1; }
}

_aw_install_redis || return 1 2>/dev/null || exit 1
