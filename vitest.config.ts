import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Tests live in test/ folders; one put beside the sources (packages/*/src) runs too, never silently not.
    include: ['packages/*/test/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // 2 cores, 3 test files at a time: most AWS and end-to-end tests spend their time waiting (on
    // moto, which serialises its requests, on timers, on processes of their own), so a third file
    // uses CPU the two others leave idle. Timing assertions are written for a loaded machine.
    maxWorkers: 3,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default', './test/support/skip-reporter.ts'],
  },
});
