/** `describeBrowser`: the browser tests' `describe` (chromium-source.ts finds the browser). */
import { describe, it } from 'vitest';
import { chromiumPath, HOW_TO_GET_CHROMIUM, NO_CHROMIUM_MARK } from './chromium-source.js';

export { chromiumPath } from './chromium-source.js';

/**
 * `describe` for tests that need Chromium. Without one the suite is registered as skipped, with
 * NO_CHROMIUM_MARK in its name (the skip reporter prints one line for the file); with
 * GQ_REQUIRE_AWS_TESTS=1 (CI, .ci/run) it is one failing test that says how to get Chromium.
 */
export function describeBrowser(name: string, fn: () => void): void {
  if (chromiumPath()) describe(name, fn);
  else if (process.env.GQ_REQUIRE_AWS_TESTS === '1') {
    describe(name, () => {
      it('has a Chromium to run in', () => {
        throw new Error(`GQ_REQUIRE_AWS_TESTS=1 but no Chromium was found, so the browser tests cannot run: ${HOW_TO_GET_CHROMIUM}.`);
      });
    });
  } else describe.skip(`${name} ${NO_CHROMIUM_MARK}`, fn);
}
