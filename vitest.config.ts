import { defineConfig } from 'vitest/config';
import { LongestFirst } from './test/support/sequencer.js';

export default defineConfig({
  test: {
    // Tests live in test/ folders; one put beside the sources (packages/*/src) runs too, never silently not.
    include: ['packages/*/test/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // 2 cores: integration and end-to-end tests start processes of their own.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-setup.ts'],
    // Longest files first (test/support/sequencer.ts): a clean clone has no cache of durations.
    sequence: { sequencer: LongestFirst },
    reporters: ['default', './test/support/skip-reporter.ts'],
  },
});
