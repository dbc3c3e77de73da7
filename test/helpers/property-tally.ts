/**
 * Counts every fast-check property run in a test file and prints one line per file:
 *   property tally: <properties> properties, <runs> runs, <failed> failed
 * Loaded as a vitest setup file only when AGENTWARD_PROPERTY_TALLY is set (vitest.config.ts), by
 * scripts/property-long-run.sh, which sums the lines into the figure docs/architecture.md records.
 *
 * fast-check calls a configured reporter instead of throwing (fast-check's `reporter` parameter),
 * so this one throws as fast-check would: a failing property still fails its test.
 */
import fc from 'fast-check';
import { afterAll } from 'vitest';

const tally = { properties: 0, runs: 0, failed: 0 };

fc.configureGlobal({
  ...fc.readConfigureGlobal(),
  reporter: (details) => {
    tally.properties++;
    tally.runs += details.numRuns;
    if (!details.failed) return;
    tally.failed++;
    throw new Error(fc.defaultReportMessage(details), { cause: details.errorInstance });
  },
});

afterAll(() => {
  if (tally.properties > 0) console.log(`property tally: ${tally.properties} properties, ${tally.runs} runs, ${tally.failed} failed`);
});
