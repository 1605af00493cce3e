import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // The runtimes tests start (and the processes they spawn) register the test ops.
    env: { SPARSIFY_TESTING: '1' },
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each test file has its own Python runtime; two at a time fit this machine's 2 cores.
    maxWorkers: 2,
  },
});
