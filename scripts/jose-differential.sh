#!/usr/bin/env bash
# The differential test of the JWS signature step (test/unit/jose-differential.test.ts: jose's
# compactVerify against the node:crypto path of src/jose/signature.ts), run long. CI runs it with
# 200 generated cases per property and a fixed seed; this runs RUNS with SEED (default: from the
# clock, printed, so a failure can be replayed with the same seed).
#
#   scripts/jose-differential.sh [RUNS] [SEED]      (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/toolchain.sh
export JOSE_DIFFERENTIAL_RUNS="${1:-20000}"
export JOSE_DIFFERENTIAL_SEED="${2:-$(date +%s)}"
echo "jose differential: ${JOSE_DIFFERENTIAL_RUNS} runs per property, seed ${JOSE_DIFFERENTIAL_SEED}"
exec npx vitest run test/unit/jose-differential.test.ts --testTimeout=0 --reporter=verbose
