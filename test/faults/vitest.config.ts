import { defineConfig } from 'vitest/config';

/**
 * Fault tests that restart shared services (the broker), so they cannot run beside `npm test`'s files.
 * `npm run faults` runs them after its pipeline trials.
 */
export default defineConfig({
  root: new URL('../../', import.meta.url).pathname,
  test: {
    include: ['services/*/test/faults/**/*.faults.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 900_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
