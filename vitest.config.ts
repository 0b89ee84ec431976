import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.spec.ts', 'src/**/*.test.ts', 'test/**/*.test.ts', 'stack/**/*.test.ts'],
    // Integration tests start real brokers and proxies; their own bounds are tighter than these.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Two cores: the end-to-end suites share one local stack and must not compete for the proxy.
    fileParallelism: false,
    setupFiles: ['test/support/setup.ts'],
    // Local stack or testcontainers (STACK=containers), chosen once per run.
    globalSetup: ['test/support/stackSelection.ts'],
  },
});
