/**
 * The headless Chromium of the browser tests (test/report-browser.test.ts), found as the moto of
 * the AWS tests is (test/support/moto.ts): GQ_CHROMIUM names the executable, else `chromium`,
 * `chromium-browser` or `google-chrome` on PATH (Debian: `apt-get install chromium`; .ci/run
 * installs it). Without one, `describeBrowser` (chromium.ts) registers the tests as skipped with NO_CHROMIUM_MARK
 * and the skip reporter prints one line for the file; with GQ_REQUIRE_AWS_TESTS=1 (CI) the tests
 * fail instead, saying why (chromium.ts). No vitest import: the skip reporter uses the marks.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const NO_CHROMIUM_MARK = '[skipped: no Chromium]';
export const HOW_TO_GET_CHROMIUM = 'install Chromium (Debian: apt-get install chromium), or set GQ_CHROMIUM to a Chromium or Chrome executable';

const executable = (f: string) => {
  try {
    accessSync(f, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The browser to drive, or undefined when there is none. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.GQ_CHROMIUM !== undefined) return executable(env.GQ_CHROMIUM) ? env.GQ_CHROMIUM : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of ['chromium', 'chromium-browser', 'google-chrome']) if (executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

