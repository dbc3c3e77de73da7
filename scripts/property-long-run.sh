#!/usr/bin/env bash
# Every property-based suite run long (issue 13 item 5a): the parsers of caller bytes
# (test/unit/*.property.test.ts), the memoized policy decisions (policy-memo.test.ts) and the
# jose differential (jose-differential.test.ts). CI runs them with 200-300 generated cases per
# property and a fixed seed; this runs RUNS per property with SEED (default: from the clock,
# printed, so that a failure can be replayed with the same seed) and prints the figure:
# properties, runs in all, and failures.
#
#   scripts/property-long-run.sh [RUNS] [SEED]      (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/toolchain.sh
runs="${1:-20000}"
seed="${2:-$(date +%s)}"
export AGENTWARD_PROPERTY_RUNS="$runs" AGENTWARD_PROPERTY_SEED="$seed"
export JOSE_DIFFERENTIAL_RUNS="$runs" JOSE_DIFFERENTIAL_SEED="$seed"
# Loads test/helpers/property-tally.ts, which prints one "property tally:" line per file.
export AGENTWARD_PROPERTY_TALLY=1
echo "property long run: ${runs} runs per property, seed ${seed}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
status=0
npx vitest run test/unit/*.property.test.ts test/unit/policy-memo.test.ts test/unit/jose-differential.test.ts --testTimeout=0 --hookTimeout=0 --reporter=verbose 2>&1 | tee "$out" || status=$?
awk -v runs="$runs" -v seed="$seed" -v secs="$(( $(date +%s) - start ))" '
  /property tally:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^properties/) p += $i; if ($(i+1) ~ /^runs/) r += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "property long run: %d properties x %d runs = %d runs in all, %d failed, seed %s, %d s\n", p, runs, r, f, seed, secs }
' "$out"
exit "$status"
