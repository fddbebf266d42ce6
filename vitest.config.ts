import { defineConfig } from 'vitest/config';

/**
 * One run, one 3-node NATS cluster (test/support/global-setup.ts) shared by every file, so
 * files run one at a time: the machines have 2 cores and the tests share that cluster.
 */
export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'apps/*/src/**/*.test.ts',
      'test/**/*.test.ts',
      'examples/**/*.test.ts',
    ],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
