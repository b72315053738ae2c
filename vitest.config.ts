import { defineConfig } from 'vitest/config';

/**
 * Two tiers. `unit` needs nothing running. `integration` runs against real Kafka, schema registry and
 * ClickHouse, taken from the environment / .stack/env or started with testcontainers (see
 * test/support/global-setup.ts); it never skips silently.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          // Unit tests first; integration after (projects with different maxWorkers need distinct groups).
          sequence: { groupOrder: 0 },
          include: [
            'services/*/test/**/*.test.ts',
            'test/simulator/test/**/*.test.ts',
            'test/unit/**/*.test.ts',
          ],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: [
            'services/*/test/**/*.int.test.ts',
            'test/simulator/test/**/*.int.test.ts',
            'test/integration/**/*.test.ts',
          ],
          exclude: ['**/node_modules/**'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Two cores: integration files share one broker and start service processes; run two at a time.
          maxWorkers: 2,
        },
      },
    ],
  },
});
