#!/usr/bin/env node
/**
 * Start-up bundles for the two commands that run on this machine: `gq` (packages/cli) and the
 * local worker `gq-agent run --backend local` (packages/agent). Node loads an ES module graph
 * file by file: the CLI's 270 modules (zod alone is 95) took ~0.3 s before its first line ran,
 * paid by every gq command and by every local worker. Each bundle is the same compiled code
 * (dist/, from tsc -b) in a few files: what is imported at start in one, what is imported later
 * (`await import(...)`: the AWS backend, the local store) in chunks of its own, loaded when used.
 *
 * - Left out, loaded from node_modules as before: native modules (better-sqlite3, @gq/spawn),
 *   the AWS SDK (@aws-sdk, @smithy: large, already one file per package, and only for AWS; loaded
 *   with require(), see sdkByRequirePlugin), pino (its worker-thread transports find their files
 *   on disk).
 * - `import.meta.url` in each bundled gq module becomes that module's own URL, given relative to
 *   the bundle (so the tree can move): paths it builds (the agent's bin, infra/gq.yaml, the
 *   boot script, package.json) are the same as from dist/.
 * - bin/gq.js and bin/gq-agent.js use the bundle only when it is newer than the last tsc build
 *   of every package in it (their tsconfig.tsbuildinfo), else dist/ (a `tsc -b` without this step
 *   never runs stale code); GQ_NO_BUNDLE=1 always uses dist/ (common/src/start-entry.ts).
 *
 * Run after `tsc -b` (the root build script does). A package not compiled yet is skipped.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Resolves as the CLI does (its package's node_modules, then the workspace's). */
const requireHere = createRequire(join(root, 'packages', 'cli', 'package.json'));
const EXTERNAL = ['better-sqlite3', '@gq/spawn', '@aws-sdk/*', '@smithy/*', 'pino', 'pino-*', 'thread-stream'];

/**
 * The AWS SDK (@aws-sdk, @smithy) stays in node_modules, loaded with require() instead of an ES
 * import. Its packages are CommonJS without a "type": an ES import of one made Node parse each
 * file twice more before running it (module-format detection, then the CommonJS export lexer),
 * ~0.45 s of the ~1.2 s of CPU that any gq command on the AWS backend took to start here. Each
 * import of such a package resolves to a small module of the bundle that require()s it and
 * exports its names.
 */
function sdkByRequirePlugin() {
  const sdk = /^@(aws-sdk|smithy)\//;
  return {
    name: 'sdk-by-require',
    setup(b) {
      b.onResolve({ filter: sdk }, (args) => (args.namespace === 'sdk-require' ? { path: args.path, external: true } : { path: args.path, namespace: 'sdk-require' }));
      // An ES module with the package's own export names (read here, at build time), so that
      // `import { X }` and `(await import(...)).X` both find them, as Node's own interop does.
      b.onLoad({ filter: /.*/, namespace: 'sdk-require' }, (args) => {
        const names = Object.keys(requireHere(args.path)).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
        const spec = JSON.stringify(args.path);
        return { contents: `const m = require(${spec});\nexport default m;\nexport const { ${names.join(', ')} } = m;\n`, loader: 'js' };
      });
    },
  };
}

/** import.meta.url of a bundled gq module: its own file, relative to the bundle's folder. */
function ownUrlPlugin(outdir) {
  return {
    name: 'own-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]dist[\\/].*\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        const rel = relative(outdir, args.path).split('\\').join('/');
        return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'js', resolveDir: dirname(args.path) };
      });
    },
  };
}

async function bundle(pkg) {
  const entry = join(root, 'packages', pkg, 'dist', 'cli.js');
  const outdir = join(root, 'packages', pkg, 'dist-start');
  if (!existsSync(entry)) {
    console.warn(`fast-start: packages/${pkg}/dist/cli.js does not exist (not compiled yet): no bundle made`);
    return;
  }
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { cli: entry },
    outdir,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    plugins: [sdkByRequirePlugin(), ownUrlPlugin(outdir)],
    // Bundled CommonJS dependencies call require(): give them one (as the EC2 agent bundle does).
    banner: { js: "import { createRequire as __gqCreateRequire } from 'node:module';\nglobalThis.require ??= __gqCreateRequire(import.meta.url);" },
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  const outs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
  console.log(`fast-start: ${relative(process.cwd(), outdir) || outdir}: ${outs.length} files from ${Object.keys(result.metafile.inputs).length} modules`);
}

await bundle('cli');
await bundle('agent');
