#!/usr/bin/env node
/**
 * Bundle the compiled agent (dist/cli.js, built by tsc) into ONE file that a worker instance
 * downloads from S3 and runs with a bare `node`: dist-bundle/gq-agent.mjs, plus manifest.json
 * { version, sha256, bytes }. better-sqlite3 stays external: only the local backend needs it and
 * it is loaded by dynamic import behind `--backend local`, which never runs on an instance.
 *
 * Run after `tsc -b` (the root build script does). Exits 0 with a warning when dist/cli.js does
 * not exist yet, so that a partial checkout still builds.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/** `--entry FILE` / `--outdir DIR` override the defaults (used by tests). */
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]) : fallback;
};
const entry = arg('--entry', join(pkgDir, 'dist', 'cli.js'));
const outDir = arg('--outdir', join(pkgDir, 'dist-bundle'));
const outFile = join(outDir, 'gq-agent.mjs');
const shown = (p) => relative(process.cwd(), p) || p;

if (!existsSync(entry)) {
  console.warn(`bundle: ${shown(entry)} does not exist (agent not compiled yet): no bundle made`);
  process.exit(0);
}

const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
mkdirSync(outDir, { recursive: true });

const result = await build({
  entryPoints: [entry],
  outfile: outFile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The local backend (and its native SQLite module) is loaded only for --backend local, never on EC2.
  external: ['better-sqlite3', '@gq/common/local/*', '@gq/spawn'],
  // Bundled CommonJS dependencies call require() (esbuild's __require looks for a free `require`)
  // and may read __filename / __dirname. Provide them as globals rather than top-level consts, so
  // that they can never clash with a bundled ES module's own top-level declarations. No hashbang
  // here: esbuild keeps the entry's hashbang on line 1 and the bundle is run as `node gq-agent.mjs`.
  banner: {
    js: [
      "import { createRequire as __gqCreateRequire } from 'node:module';",
      "import { fileURLToPath as __gqFileURLToPath } from 'node:url';",
      "import { dirname as __gqDirname } from 'node:path';",
      'globalThis.require ??= __gqCreateRequire(import.meta.url);',
      'globalThis.__filename ??= __gqFileURLToPath(import.meta.url);',
      'globalThis.__dirname ??= __gqDirname(__gqFileURLToPath(import.meta.url));',
    ].join('\n'),
  },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});

const data = readFileSync(outFile);
const sha256 = createHash('sha256').update(data).digest('hex');
const manifest = { version, sha256, bytes: data.length };
writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

const inputs = Object.keys(result.metafile.inputs).length;
console.log(
  `bundle: ${shown(outFile)} ${(data.length / 1024).toFixed(0)} KiB from ${inputs} modules, sha256 ${sha256}`,
);
