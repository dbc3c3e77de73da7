import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start real servers and compile policies with opa; two workers fit the
    // 2-core machines this runs on.
    maxWorkers: 2,
    // One temporary folder per run, removed at its end (test/helpers/temp-root.ts).
    globalSetup: ['test/helpers/temp-root.ts'],
    // scripts/property-long-run.sh counts the fast-check runs of every suite (test/helpers/property-tally.ts).
    setupFiles: process.env.AGENTWARD_PROPERTY_TALLY ? ['test/helpers/property-tally.ts'] : [],
    // Coverage is measured on every run and may not fall below these floors. Code that only runs
    // in child processes (the CLI in src/main.ts) is exercised by tests but not counted here.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary'],
      thresholds: { lines: 85, statements: 85, functions: 85, branches: 78 },
    },
  },
});
