/**
 * What the bin scripts (`gq`: packages/cli/bin/gq.js, `gq-agent`: packages/agent/bin/gq-agent.js)
 * load: the start-up bundle (scripts/fast-start.mjs: dist-start/cli.js, the same compiled code in
 * a few files) when it is newer than the last tsc build of every package a bundle holds (their
 * tsconfig.tsbuildinfo: a `tsc -b` without the bundle step then never runs stale code), else the
 * compiled dist/cli.js; GQ_NO_BUNDLE=1 always dist/. Imported on its own (@gq/common/start-entry,
 * not through the package's index): it runs before anything else is loaded.
 */
import { statSync } from 'node:fs';

/** The packages whose code the bundles hold (the CLI's holds the agent's modules it uses too). */
const BUNDLED = ['cli', 'common', 'agent'];

function mtime(url: URL): number | undefined {
  try {
    return statSync(url).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The module a bin script at `binUrl` (its import.meta.url) should import. */
export function startEntry(binUrl: string): string {
  const bundle = new URL('../dist-start/cli.js', binUrl);
  const plain = new URL('../dist/cli.js', binUrl);
  if (process.env.GQ_NO_BUNDLE === '1') return plain.href;
  const made = mtime(bundle);
  if (made === undefined) return plain.href;
  const built = Math.max(0, ...BUNDLED.map((p) => mtime(new URL(`../../${p}/tsconfig.tsbuildinfo`, binUrl)) ?? 0));
  return made >= built ? bundle.href : plain.href;
}
