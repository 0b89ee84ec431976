import { defineConfig } from 'vitest/config';

/**
 * Two lanes (`npm run test:unit`, `npm run test:integration`; `npm test` runs both, unit first):
 *
 * - unit: every marble spec and unit test under src/. No network, no server, no child
 *   process that opens a socket (it passes inside `unshare -n`), files in parallel.
 * - integration: the real-stack suites under test/ and stack/. They start real brokers,
 *   engines and proxies and share two cores, so their files run one at a time.
 */
export default defineConfig({
  test: {
    setupFiles: ['test/support/setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.spec.ts', 'src/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts', 'stack/**/*.test.ts'],
          // Integration tests start real brokers and proxies; their own bounds are tighter than these.
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Two cores: the end-to-end suites share one machine and must not compete for the proxy.
          fileParallelism: false,
          // Local stack or testcontainers (STACK=containers), chosen once per run.
          globalSetup: ['test/support/stackSelection.ts'],
        },
      },
    ],
  },
});
