import { defineConfig } from 'vitest/config';

// Integration suites start their own redis-server processes; two cores means a small pool.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
